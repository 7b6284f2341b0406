"""Test-wide settings: CPU, float32 matmuls at full precision for tight comparisons, and a
persistent XLA compilation cache private to this test process.

Most of a small training run's time on a CPU is XLA compiling its init, train and eval steps
(~20 s for ``digits:tiny``, against a few seconds of stepping), and every run builds a new
:class:`~lightjax.train.experiment.Experiment` whose jitted functions compile afresh. Tests that
train the same program several times (resume == uninterrupted, a reference run next to an
interrupted one, a pruning session opened twice) hit the cache after the first compilation: the
cache key is a hash of the compiled program and its options, so a hit runs the very executable
a fresh compilation would have produced. The cache lives in a temporary folder of this process
(one per xdist worker; removed at exit), so no two processes write one cache entry at the same
time; ``xla_cache.subprocess_env()`` hands it to a subprocess the test waits for.
``LIGHTJAX_TEST_COMPILATION_CACHE=0`` turns it off.

XLA:CPU compiles the suite's programs with LLVM at optimization level 1
(``--xla_backend_optimization_level=1`` in ``XLA_FLAGS``, inherited by subprocesses and notebook
kernels; ``LIGHTJAX_TEST_XLA_OPT_LEVEL`` overrides, ``default`` leaves XLA's own): the tests run
few steps of many small programs, so compiling dominates (the same trade the library makes for
the state init, :func:`lightjax.train.step.init_compiler_options`). Convolutions and matmuls
are library calls either way; every comparison in the suite is between programs compiled alike.
"""
import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
OPT_LEVEL = os.environ.get("LIGHTJAX_TEST_XLA_OPT_LEVEL", "1")
if OPT_LEVEL != "default" and "xla_backend_optimization_level" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_backend_optimization_level={OPT_LEVEL}").strip()

import jax  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")

#: Compilations faster than this are not worth a cache file.
MIN_COMPILE_SECONDS = 0.3
CACHE_DIR = None
if os.environ.get("LIGHTJAX_TEST_COMPILATION_CACHE", "1") != "0":
    CACHE_DIR = tempfile.mkdtemp(prefix="lightjax-test-xla-cache-")
    _owner = os.getpid()
    # only the process that made the folder removes it (a forked child exits too)
    atexit.register(lambda: os.getpid() == _owner and shutil.rmtree(CACHE_DIR, True))
    jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)

