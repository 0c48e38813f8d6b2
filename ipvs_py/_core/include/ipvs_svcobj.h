/* ipvs_svcobj.h - Python objects with their service-table entry on their
 * first cache line: the kernel's layout, where struct ip_vs_service embeds
 * the hlist node its table links.
 *
 * Why: a lookup that hands the caller a Service object reads the bucket
 * head, the entry, and the object (the caller's Py_INCREF).  At 100,000
 * services each is a dependent cache miss.  With the entry in a separate
 * block, a hack build that skipped the object's miss took find_service
 * from 1.70-2.16x to 1.20-1.49x of its cost at 10 services (builds
 * alternating, docs/control-plane.md).  Here the entry is in the object, so the object's
 * line and the entry's are the same line.
 *
 * How: types adopted by svctab.adopt() get svo_alloc / svo_free as
 * tp_alloc / tp_free.  An object is a block of the module's cage
 * (iht_cage.h), which is what lets a 32-bit table reference reach its
 * node:
 *
 *   block + 0  .. 64   the pre-header, at its end: PyGC_Head (the cycle
 *                      collector's links; 16 bytes) and, on 3.12+ for a
 *                      class with __weakref__ (3.11+ with __dict__), the
 *                      managed weakref/dict pointers before it; zeroed,
 *                      as PyType_GenericAlloc leaves them
 *   block + 64 ..      the object: PyObject_HEAD, then ServiceNode's
 *                      struct svt_entry (node, obj, key end at byte 64)
 *
 * This is what PyType_GenericAlloc and PyObject_GC_Del do, with the cage
 * in place of pymalloc and the pre-header right-aligned in a fixed
 * 64-byte lead.  One difference: the collector's allocation count
 * (_PyObject_GC_Link, internal) is not bumped, so creating services does
 * not bring the next automatic collection closer.  svctab.adopt() measures
 * the type's pre-header (sys.getsizeof - __sizeof__) and refuses one
 * larger than the lead, and refuses builds whose collector finds objects
 * by walking its own heaps (free-threaded CPython).
 *
 * Context: GIL held (they are type slots).
 */
#ifndef IPVS_PY_IPVS_SVCOBJ_H
#define IPVS_PY_IPVS_SVCOBJ_H

#include <Python.h>

#include "iht_cage.h"

#define SVO_LEAD	64	/* bytes before the object: one line */
#define SVO_MAX_BLOCK	IHT_CAGE_SMALL_MAX	/* largest cage small block */

/* 1 when this build of CPython can run objects allocated here. */
#ifdef Py_GIL_DISABLED
#define SVO_SUPPORTED 0
#else
#define SVO_SUPPORTED 1
#endif

/* Block size for an instance of @type: a multiple of 64, so the cage hands
 * out 64-byte aligned blocks (iht_cage_alloc). */
static inline size_t svo_block_size(PyTypeObject *type)
{
	return ((size_t)SVO_LEAD + (size_t)type->tp_basicsize + 63) &
	       ~(size_t)63;
}

/* 1 if @op came from svo_alloc (its entry is reachable by a table
 * reference). */
static inline int svo_owns(PyObject *op)
{
	return iht_cage_contains(op, 1);
}

/* tp_alloc: a zeroed object of @type in the cage, tracked by the collector
 * when @type is a GC type. */
static PyObject *svo_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
	size_t size = svo_block_size(type);
	char *block;
	PyObject *op;

	if (nitems != 0 || type->tp_itemsize != 0) {
		PyErr_SetString(PyExc_SystemError,
				"svo_alloc: variable-size objects unsupported");
		return NULL;
	}
	if (size > SVO_MAX_BLOCK) {
		PyErr_Format(PyExc_TypeError,
			     "%s instances are too large (%zd bytes) for the "
			     "service table's allocator",
			     type->tp_name, type->tp_basicsize);
		return NULL;
	}
	block = iht_cage_alloc(size);
	if (!block)
		return PyErr_NoMemory();
	op = (PyObject *)(block + SVO_LEAD);
	PyObject_Init(op, type);		/* refcnt 1; INCREFs a heap type */
	if (PyType_IS_GC(type))
		PyObject_GC_Track(op);
	return op;
}

/* tp_free: give an object from svo_alloc back to the cage.  An instance
 * made before its type was adopted came from PyType_GenericAlloc and goes
 * back the way it came. */
static void svo_free(void *p)
{
	PyObject *op = p;
	PyTypeObject *type = Py_TYPE(op);

	if (!svo_owns(op)) {
		if (PyType_IS_GC(type))
			PyObject_GC_Del(p);
		else
			PyObject_Free(p);
		return;
	}
	if (PyType_IS_GC(type) && PyObject_GC_IsTracked(op))
		PyObject_GC_UnTrack(op);
	iht_cage_free((char *)op - SVO_LEAD, svo_block_size(type));
}

/* Install the allocator on @type (adopt() has checked it). */
static inline void svo_adopt(PyTypeObject *type)
{
	type->tp_alloc = svo_alloc;
	type->tp_free = svo_free;
}

#endif /* IPVS_PY_IPVS_SVCOBJ_H */
