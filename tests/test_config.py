"""Backend and instruction-set selection, and what cpool reports about them.

The choices are made at import (``CPOOL_BACKEND``, ``CPOOL_ISA``), so those
tests run a child Python; ``cpool._compiled.use_isa`` switches the ISA of the
running process (the kernel tests compare ISAs with it).
"""

import numpy as np
import pytest
from helpers import COMPILED, run_python

import cpool

ISA_NAMES = ("baseline", "avx2", "avx512")  # the vocabulary of CPOOL_ISA, config() and use_isa()
AVAILABLE = () if COMPILED is None else COMPILED.AVAILABLE_ISAS

CHECK_RESULTS = """
import numpy as np, cpool
x = np.random.default_rng(0).standard_normal((2, 3, 30, 34)).astype(np.float32)
for args in [(2,), (3, 2, 1)]:
    o, i = cpool.max_pool2d(x, *args, return_indices=True)
    ro, ri = cpool.slow.max_pool2d(x, *args, return_indices=True)
    assert o.tobytes() == ro.tobytes() and np.array_equal(i, ri), args
    g = np.ones_like(o)
    assert np.array_equal(cpool.max_pool2d_backward(g, i, x.shape), cpool.slow.max_pool2d_backward(g, i, x.shape))
"""


# -------------------------------------------------------------- backend
def test_default_import_uses_compiled_backend(request):
    if request.config.getoption("--no-extension"):
        pytest.skip("--no-extension: the extension may be deliberately absent")
    out = run_python("import cpool, cpool._backend as b; print(cpool.backend, b.IMPL.__name__, "
                     "cpool.max_pool2d.__module__)").stdout.strip()
    assert out == "cython cpool._compiled cpool.functional"


def test_env_forces_numpy_backend():
    out = run_python("import sys, cpool, cpool._backend as b; print(cpool.backend, b.IMPL.__name__, "
                     "cpool.get_num_threads(), b.compiled(), 'cpool._kernels' in sys.modules)",
                     CPOOL_BACKEND="numpy").stdout.strip()
    # the extension is not even imported
    assert out == "numpy cpool.slow 1 None False"


def test_env_requires_the_compiled_backend():
    res = run_python("import cpool; print(cpool.backend)", check=False, CPOOL_BACKEND="cython")
    if COMPILED is None:
        assert res.returncode != 0 and "CPOOL_BACKEND=cython" in res.stderr, res.stderr
    else:
        assert res.returncode == 0 and res.stdout.strip() == "cython", res.stderr


def test_bad_backend_env_is_a_clear_error():
    res = run_python("import cpool", check=False, CPOOL_BACKEND="fortran")
    assert res.returncode != 0 and "CPOOL_BACKEND" in res.stderr and "fortran" in res.stderr


# --------------------------------------------------------------- config
def test_show_config(capsys):
    cpool.show_config()
    text = capsys.readouterr().out
    for word in ("cpool", cpool.__version__, "backend", cpool.backend, "openmp", "num_threads", np.__version__):
        assert word in text
    info = cpool.config()
    assert info["backend"] == cpool.backend and info["num_threads"] == cpool.get_num_threads()
    if info["isa"]:
        assert f"isa:         {info['isa']} (available: {', '.join(info['available_isas'])})" in text
    else:
        assert "isa:" not in text


def test_config_keys():
    info = cpool.config()
    assert list(info) == ["version", "backend", "openmp", "isa", "available_isas", "num_threads", "numpy",
                          "extension_error"]
    assert info["version"] == cpool.__version__ and info["numpy"] == np.__version__
    assert info["backend"] in ("cython", "numpy") and isinstance(info["openmp"], bool)
    assert isinstance(info["num_threads"], int) and info["num_threads"] >= 1
    if COMPILED is not None:  # loaded by the tests even on CPOOL_BACKEND=numpy
        assert info["isa"] == COMPILED.isa() and info["available_isas"] == COMPILED.AVAILABLE_ISAS
        assert info["openmp"] == COMPILED.OPENMP
    if cpool.backend == "cython":
        assert info["extension_error"] is None


# ----------------------------------------------------------------- ISAs
@pytest.mark.usefixtures("compiled")
def test_available_isas_vocabulary():
    assert AVAILABLE[0] == "baseline" and set(AVAILABLE) <= set(ISA_NAMES)
    assert list(AVAILABLE) == [n for n in ISA_NAMES if n in AVAILABLE]  # narrowest first
    if "avx512" in AVAILABLE:
        assert "avx2" in AVAILABLE


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("isa", AVAILABLE)
def test_cpool_isa_selects_each_available_isa(isa):
    code = ("import warnings; warnings.simplefilter('error')\n"
            "import cpool, cpool._compiled as c\n"
            "with c.use_isa(c.isa()) as m:\n"
            "    print(cpool.config()['isa'], c.isa(), m.get_isa(), m.__name__)\n"
            "cpool.show_config()\n" + CHECK_RESULTS)
    res = run_python(code, CPOOL_ISA=isa)
    first, *rest = res.stdout.splitlines()
    module = "cpool._kernels" if isa == "baseline" else "cpool._kernels_avx2"
    assert first.split() == [isa, isa, isa, module]
    assert f"  isa:         {isa} (available: {', '.join(AVAILABLE)})" in rest
    assert "Warning" not in res.stderr, res.stderr


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("value", ["", "auto", " Auto "])
def test_cpool_isa_auto_is_the_widest(value):
    res = run_python("import cpool; print(cpool.config()['isa'])", CPOOL_ISA=value)
    assert res.stdout.strip() == AVAILABLE[-1] and "Warning" not in res.stderr, res.stderr


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("name", ["sse9", "none", "avx-512"] + [n for n in ISA_NAMES if n not in AVAILABLE])
def test_cpool_isa_unavailable_name_warns_and_uses_the_widest(name):
    res = run_python("import cpool; print(cpool.config()['isa'])\n" + CHECK_RESULTS, CPOOL_ISA=name)
    assert res.stdout.strip() == AVAILABLE[-1]
    assert "RuntimeWarning" in res.stderr and f"CPOOL_ISA={name!r} is not available" in res.stderr, res.stderr


def test_use_isa_switches_and_restores(compiled):
    c = compiled.module
    before = c.isa()
    x = np.random.default_rng(0).standard_normal((2, 3, 20, 24)).astype(np.float32)
    expected = cpool.slow.max_pool2d(x, 2, return_indices=True)
    for isa in c.AVAILABLE_ISAS:
        with c.use_isa(isa) as module:
            assert c.isa() == isa and cpool.config()["isa"] == isa
            assert module.get_isa() == isa and isa in module.isas()
            assert module.__name__ == ("cpool._kernels" if isa == "baseline" else "cpool._kernels_avx2")
            out, idx = compiled.max_pool2d(x, 2, return_indices=True)
            assert out.tobytes() == expected[0].tobytes() and np.array_equal(idx, expected[1])
            with c.use_isa(c.AVAILABLE_ISAS[0]):  # nested
                assert c.isa() == c.AVAILABLE_ISAS[0]
            assert c.isa() == isa and module.get_isa() == isa
        assert c.isa() == before
    with pytest.raises(RuntimeError, match="inside"):
        with c.use_isa(c.AVAILABLE_ISAS[0]):
            raise RuntimeError("inside")
    assert c.isa() == before


@pytest.mark.parametrize("name", ["sse9", "none", "AVX2", ""])
def test_use_isa_rejects_unknown_names(compiled, name):
    c = compiled.module
    before = c.isa()
    with pytest.raises(ValueError, match="isa="):
        with c.use_isa(name):
            pass
    assert c.isa() == before


def test_kernel_modules_know_their_isas(compiled):
    import cpool._kernels as baseline
    from cpool._validation import GEOMETRY_FIELDS

    assert baseline.COMPILED_ISA == "baseline" and baseline.isas() == ("baseline",)
    assert baseline.cpu_features()[0] == "baseline"
    modules = [baseline]
    if len(compiled.module.AVAILABLE_ISAS) > 1:
        import cpool._kernels_avx2 as avx2

        assert avx2.COMPILED_ISA == "avx2" and avx2.isas() == compiled.module.AVAILABLE_ISAS[1:]
        modules.append(avx2)
    for module in modules:
        assert module.GEOMETRY_FIELDS == GEOMETRY_FIELDS
        assert bool(module.OPENMP) == compiled.module.OPENMP
        for bad in ("sse9", "none", *(n for n in ISA_NAMES if n not in module.isas())):
            with pytest.raises(ValueError, match="isa="):
                module.set_isa(bad)
    with compiled.module.use_isa(compiled.module.isa()) as in_use:
        assert in_use.get_isa() == compiled.module.isa()
