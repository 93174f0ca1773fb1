"""Emotion evaluation of FLAME parameters, as in the paper's section 4 (chapter 6).

- :mod:`~tempsmirk.evaluation.metrics` — :func:`ccc`, :func:`pcc`, :func:`rmse`, :func:`accuracy`
  (eqs. 6-8), :func:`sagr`, :func:`confusion_matrix`, :class:`EmotionMetrics`.
- :mod:`~tempsmirk.evaluation.emotion` — the EmotionVA MLP (:class:`EmotionMLP`), EMOCA's loss
  and shake, the class-balanced sampler and :func:`train_emotion_mlp` with EMOCA's model selection.
- :mod:`~tempsmirk.evaluation.synthetic_affectnet` — :func:`write_synthetic_affectnet`: rendered
  faces with classes, valence and arousal, in AffectNet's file layout.
- :mod:`~tempsmirk.evaluation.pipeline` — index -> crops -> encoder -> cached parameters -> MLP
  (:func:`evaluate_encoders`), one :class:`EncoderResult` per encoder.
- :mod:`~tempsmirk.evaluation.report` — :func:`results_table`, :func:`protocol_table` and
  :func:`write_report`: the results as the paper's Table 2, the protocol, the files of a run.
- :mod:`~tempsmirk.evaluation.plots` — confusion matrices and valence/arousal scatter plots.
- :mod:`~tempsmirk.evaluation.cli` — ``python -m tempsmirk evaluate``.
"""

from tempsmirk.evaluation.emotion import (
    INPUT_FIELDS,
    SAMPLERS,
    VA_SCHEMES,
    EmotionLossConfig,
    EmotionLosses,
    EmotionMLP,
    EmotionMLPConfig,
    TrainingHistory,
    emotion_inputs,
    emotion_losses,
    holdout_loss,
    predict_emotion,
    sample_epoch,
    train_emotion_mlp,
    va_term_weights,
)
from tempsmirk.evaluation.metrics import (
    EMOTION_CLASSES,
    TABLE_COLUMNS,
    EmotionMetrics,
    EmotionPrediction,
    EmotionTargets,
    accuracy,
    ccc,
    confusion_matrix,
    emotion_metrics,
    pcc,
    rmse,
    sagr,
)
from tempsmirk.evaluation.pipeline import (
    EncoderResult,
    EvaluationConfig,
    encoder_parameters,
    evaluate_encoders,
    evaluate_parameters,
    index_targets,
    prepare_index,
    untrained_checkpoint,
)
from tempsmirk.evaluation.plots import comparison_figure, plot_confusion, plot_history, plot_va_scatter, result_figure
from tempsmirk.evaluation.report import protocol_table, results_table, write_report
from tempsmirk.evaluation.synthetic_affectnet import (
    PROTOTYPES,
    SYNTHETIC_CROP_RULE,
    SyntheticAffectNetConfig,
    SyntheticGroundTruth,
    ground_truth_params,
    load_ground_truth,
    sample_emotions,
    write_synthetic_affectnet,
)

__all__ = [
    "EMOTION_CLASSES", "INPUT_FIELDS", "PROTOTYPES", "SAMPLERS", "SYNTHETIC_CROP_RULE", "TABLE_COLUMNS", "VA_SCHEMES",
    "EmotionLossConfig", "EmotionLosses", "EmotionMLP", "EmotionMLPConfig", "EmotionMetrics",
    "EmotionPrediction", "EmotionTargets", "EncoderResult", "EvaluationConfig",
    "SyntheticAffectNetConfig", "SyntheticGroundTruth", "TrainingHistory",
    "accuracy", "ccc", "comparison_figure", "confusion_matrix", "emotion_inputs", "emotion_losses",
    "emotion_metrics", "encoder_parameters", "evaluate_encoders", "evaluate_parameters",
    "ground_truth_params", "holdout_loss", "index_targets", "load_ground_truth", "pcc",
    "plot_confusion", "plot_history", "plot_va_scatter", "predict_emotion", "prepare_index",
    "protocol_table", "result_figure", "results_table", "rmse", "sagr", "sample_emotions",
    "sample_epoch", "train_emotion_mlp", "untrained_checkpoint", "va_term_weights", "write_report",
    "write_synthetic_affectnet",
]
