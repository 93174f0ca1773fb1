"""The torchvision shim: timm (which imports torchvision) must import and build models."""

import subprocess
import sys


def test_timm_imports_after_shim_in_fresh_interpreter():
    # A fresh interpreter: the shim has to work when torchvision was never imported.
    code = (
        "from tempsmirk.compat import ensure_torchvision, torchvision_patched\n"
        "tv = ensure_torchvision()\n"
        "import timm, torch\n"
        "m = timm.create_model('tf_mobilenetv3_small_minimal_100', pretrained=False, features_only=True)\n"
        "feats = m(torch.rand(1, 3, 64, 64))\n"
        "print(tv.__version__, torchvision_patched(), feats[-1].shape[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    version, patched, channels = out.stdout.split()
    assert version.startswith("0.")
    assert channels == "576"
    # Where the extension loads (e.g. a CUDA machine), the shim must not patch anything.
    import torch

    if torch.cuda.is_available():
        assert patched == "False"


def test_shim_reraises_unrelated_errors(monkeypatch):
    import builtins

    import tempsmirk.compat as compat

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "torchvision":
            raise RuntimeError("something else entirely")
        return real_import(name, *args, **kwargs)

    saved = {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}
    for k in saved:
        del sys.modules[k]
    monkeypatch.setattr(builtins, "__import__", broken)
    try:
        try:
            compat.ensure_torchvision()
        except RuntimeError as err:
            assert "something else" in str(err)
        else:
            raise AssertionError("an unrelated import error was swallowed")
    finally:
        monkeypatch.undo()
        sys.modules.update(saved)
