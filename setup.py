"""Build the Cython core of ipvs_py.

Every ``ipvs_py/_core/*.pyx`` becomes an extension ``ipvs_py._core.<name>``
with the C headers of ``ipvs_py/_core/include`` on the include path.

Build switches (environment variables, read at build time):

``IPVS_PY_DEBUG_BUILD=1``  ``-O0 -g3 -UNDEBUG`` instead of ``-O3 -DNDEBUG``
                           and ``IPVS_PY_DEBUG=1`` for the C headers.
``IPVS_PY_SANITIZE=1``     debug build plus AddressSanitizer and UBSan
                           (run with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``;
                           ``tox -e asan`` does all of this).
``IPVS_PY_TSAN=1``         debug build plus ThreadSanitizer.
``IPVS_PY_CYTHON_TRACING=1`` line tracing for coverage/profilers.
``IPVS_PY_ANNOTATE=1``     write Cython's annotated HTML next to each .pyx.
``IPVS_PY_NATIVE=1``       ``-march=native`` (benchmarks only; not portable).
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join("ipvs_py", "_core")
INCLUDE = os.path.join(CORE, "include")


def _flag(name):
    return os.environ.get(name, "") not in ("", "0", "no", "false")


def _compile_args():
    sanitize = _flag("IPVS_PY_SANITIZE")
    tsan = _flag("IPVS_PY_TSAN")
    debug = _flag("IPVS_PY_DEBUG_BUILD") or sanitize or tsan
    cflags = ["-std=gnu11", "-Wall", "-Wno-unused-function",
              # Cython's generated code trips these; our headers do not.
              "-Wno-unreachable-code", "-Wno-maybe-uninitialized"]
    ldflags = []
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    if debug:
        cflags += ["-O0", "-g3", "-UNDEBUG"]
        macros.append(("IPVS_PY_DEBUG", "1"))
    else:
        cflags += ["-O3", "-DNDEBUG"]
    if sanitize:
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
               "-fno-sanitize-recover=undefined"]
        cflags += san
        ldflags += san
    if tsan:
        cflags += ["-fsanitize=thread"]
        ldflags += ["-fsanitize=thread"]
    if _flag("IPVS_PY_NATIVE"):
        cflags.append("-march=native")
    if _flag("IPVS_PY_CYTHON_TRACING"):
        macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    return cflags, ldflags, macros


def extensions():
    cflags, ldflags, macros = _compile_args()
    exts = []
    for pyx in sorted(glob.glob(os.path.join(CORE, "*.pyx"))):
        name = os.path.splitext(os.path.relpath(pyx, HERE))[0].replace(os.sep, ".")
        exts.append(Extension(
            name, [pyx],
            include_dirs=[INCLUDE],
            depends=sorted(glob.glob(os.path.join(INCLUDE, "*.h"))),
            extra_compile_args=cflags,
            extra_link_args=ldflags,
            define_macros=macros,
        ))
    directives = {"language_level": 3, "embedsignature": True}
    if _flag("IPVS_PY_CYTHON_TRACING"):
        directives.update(linetrace=True, binding=True)
    return cythonize(exts, compiler_directives=directives,
                     annotate=_flag("IPVS_PY_ANNOTATE"),
                     include_path=[CORE])


setup(ext_modules=extensions())
