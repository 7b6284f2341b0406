"""The test process's persistent compilation cache (set up in conftest.py), for subprocesses."""
import jax


def subprocess_env() -> dict[str, str]:
    """Environment variables that give a subprocess this process's compilation cache, and its
    matmul precision (conftest.py) so that it compiles the same programs. Only for a subprocess
    that runs while this process compiles nothing (it waits or polls files), so one cache entry
    is never written by two processes at once."""
    env = {"JAX_DEFAULT_MATMUL_PRECISION": str(jax.config.jax_default_matmul_precision)}
    folder = jax.config.jax_compilation_cache_dir
    if folder:
        env.update(JAX_COMPILATION_CACHE_DIR=folder,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=str(
                       jax.config.jax_persistent_cache_min_compile_time_secs))
    return env
