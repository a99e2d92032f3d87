"""BLAS's matrix product (sgemm/dgemm), callable from inside Numba kernels without the GIL.

Why: a conv layer multiplies once or twice per image. Called from Python (np.dot/np.matmul),
each product gives up the GIL and takes it back; with the batch split over two threads, the
threads then queued for the GIL dozens of times per call, and on the course VM each hand-over
wakes a sleeping vCPU (0.4 ms median, ~3 ms at the 90th percentile): a 2-thread conv forward
used 1.2-1.3 cores of 2 (measured 16-18 ms wall for 21 ms of CPU time). Inside one Numba call
per thread the whole slice of the batch (unfold, products, fold) runs without touching the GIL.

The function is SciPy's BLAS (`scipy.linalg.cython_blas`, the public, stable way to reach it:
Fortran calling convention, 32-bit integers). Its address is registered with LLVM under a
fixed symbol name, so kernels that call it are cached on disk by Numba like any other (a
ctypes function pointer would be baked into the machine code and block caching).
threadpoolctl sees this OpenBLAS too, so `course_lib.kernels.threads` limits it to one thread
like NumPy's.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from scipy.linalg import cython_blas

from course_lib.kernels import JIT_OPTIONS

__all__ = ["gemm"]

_SYMBOLS = {"sgemm": "course_lib_sgemm", "dgemm": "course_lib_dgemm"}


def _capsule_address(name: str) -> int:
    """The C address of scipy.linalg.cython_blas's function `name`."""
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


for _name, _symbol in _SYMBOLS.items():
    llvm.add_symbol(_symbol, _capsule_address(_name))


@intrinsic
def _data_pointer(typingctx, array):
    """void* to array's first element (a view's, for a slice)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        view = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.bitcast(view.data, cgutils.voidptr_t)

    return types.voidptr(array), codegen


def _fortran_gemm(symbol: str):
    """An intrinsic calling `symbol`(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c,
    ldc), every argument a pointer, as Fortran BLAS takes them."""

    @intrinsic
    def call(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        signature = types.void(*([types.voidptr] * 13))

        def codegen(context, builder, sig, args):
            fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t] * 13)
            builder.call(cgutils.get_or_insert_function(builder.module, fnty, symbol), args)
            return context.get_dummy_value()

        return signature, codegen

    return call


_sgemm = _fortran_gemm(_SYMBOLS["sgemm"])
_dgemm = _fortran_gemm(_SYMBOLS["dgemm"])


@numba.njit(**JIT_OPTIONS)
def gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """c[:m, :n] = alpha * op(a) @ op(b) + beta * c[:m, :n], all row-major (C order).

    op(a): (m, k), a itself if not trans_a, else a.T (then a holds (k, m)); likewise op(b):
    (k, n). lda, ldb, ldc: the row strides in elements (a row of a starts lda elements after
    the previous one), so a block of columns of a larger matrix is passed as a view and its
    parent's row length. a, b, c: float32 or float64 arrays of one dtype; no checks (callers are
    kernels that built the shapes).
    """
    # Row-major c is column-major c.T = op(b).T @ op(a).T: BLAS gets b first, and sizes n, m.
    flags = np.empty(2, np.uint8)
    flags[0] = 84 if trans_b else 78  # 'T' or 'N'
    flags[1] = 84 if trans_a else 78
    sizes = np.empty(6, np.int32)
    sizes[0], sizes[1], sizes[2] = n, m, k
    sizes[3], sizes[4], sizes[5] = ldb, lda, ldc
    scalars = np.empty(2, c.dtype)
    scalars[0], scalars[1] = alpha, beta
    args = (_data_pointer(flags[0:1]), _data_pointer(flags[1:2]), _data_pointer(sizes[0:1]),
            _data_pointer(sizes[1:2]), _data_pointer(sizes[2:3]), _data_pointer(scalars[0:1]),
            _data_pointer(b), _data_pointer(sizes[3:4]), _data_pointer(a),
            _data_pointer(sizes[4:5]), _data_pointer(scalars[1:2]), _data_pointer(c),
            _data_pointer(sizes[5:6]))
    if c.itemsize == 4:
        _sgemm(*args)
    else:
        _dgemm(*args)
