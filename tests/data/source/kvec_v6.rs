// SPDX-License-Identifier: GPL-2.0

//! A test fixture for `verify source`: a `Vec` in the style of the kernel's
//! `rust/kernel/alloc/kvec.rs`, with `shrink_to` as v6 of the shrinking series
//! designed it (kmalloc buffers go to `realloc`; vmalloc buffers are copied
//! when a page comes back). Written for this project; not the kernel's text.

use core::ptr::{self, NonNull};

use super::{AllocError, Allocator, ArrayLayout, Flags, KVmalloc, NumaNode};
use crate::page::PAGE_SIZE;

/// A vector backed by an allocator `A`.
pub struct Vec<T, A: Allocator> {
    ptr: NonNull<T>,
    layout: ArrayLayout<T>,
    len: usize,
    _p: core::marker::PhantomData<A>,
}

impl<T, A> Vec<T, A>
where
    A: Allocator,
{
    const fn is_zst() -> bool {
        core::mem::size_of::<T>() == 0
    }

    /// How many elements fit without reallocating.
    pub const fn capacity(&self) -> usize {
        if const { Self::is_zst() } {
            usize::MAX
        } else {
            self.layout.len()
        }
    }

    /// How many elements are stored.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Makes room for at least `additional` more elements.
    ///
    /// The capacity at least doubles, so pushing one element at a time
    /// reallocates only a logarithmic number of times.
    pub fn reserve(&mut self, additional: usize, flags: Flags) -> Result<(), AllocError> {
        let len = self.len();
        let cap = self.capacity();

        // Enough room already.
        if cap - len >= additional {
            return Ok(());
        }

        // The capacity of a zero-sized `T` is already `usize::MAX`.
        if Self::is_zst() {
            return Err(AllocError);
        }

        // The type invariants keep `cap <= isize::MAX`: doubling it cannot wrap.
        let wanted = len.checked_add(additional).ok_or(AllocError)?;
        let new_cap = core::cmp::max(cap * 2, wanted);
        let layout = ArrayLayout::new(new_cap)?;

        // SAFETY: `self.ptr` is dangling with an empty layout, or came from `A` with `self.layout`.
        let ptr = unsafe {
            A::realloc(Some(self.ptr.cast()), layout.into(), self.layout.into(), flags, NumaNode::NO_NODE)?
        };

        self.ptr = ptr.cast();
        self.layout = layout;
        Ok(())
    }
}

impl<T> Vec<T, KVmalloc> {
    /// Lowers the capacity towards `min_capacity`, never below the length.
    ///
    /// A kmalloc buffer is handed to `realloc`, which decides what to do with
    /// it; a vmalloc buffer is replaced by a smaller copy, but only when that
    /// gives back at least one page.
    pub fn shrink_to(&mut self, min_capacity: usize, flags: Flags) -> Result<(), AllocError> {
        let target = core::cmp::max(self.len(), min_capacity);

        // Already small enough.
        if self.capacity() <= target {
            return Ok(());
        }

        // Zero-sized elements never own memory.
        if Self::is_zst() {
            return Ok(());
        }

        // SAFETY: `self.ptr` is either dangling or the start of a `KVmalloc` buffer.
        let on_vmalloc = unsafe { bindings::is_vmalloc_addr(self.ptr.as_ptr().cast()) };

        if !on_vmalloc {
            let layout = ArrayLayout::<T>::new(target).map_err(|_| AllocError)?;

            // SAFETY: `self.ptr` came from `KVmalloc` with `self.layout`.
            let new_ptr = unsafe {
                KVmalloc::realloc(
                    Some(self.ptr.cast()),
                    layout.into(),
                    self.layout.into(),
                    flags,
                    NumaNode::NO_NODE,
                )?
            };

            self.ptr = new_ptr.cast();
            self.layout = layout;
            return Ok(());
        }

        // vmalloc: worth a copy only if a page is given back.
        let old_pages = (self.capacity() * core::mem::size_of::<T>()).div_ceil(PAGE_SIZE);
        let new_pages = (target * core::mem::size_of::<T>()).div_ceil(PAGE_SIZE);
        if old_pages <= new_pages {
            return Ok(());
        }

        if target == 0 {
            if !self.layout.is_empty() {
                // SAFETY: the buffer was allocated by `KVmalloc` with `self.layout`.
                unsafe { KVmalloc::free(self.ptr.cast(), self.layout.into()) };
            }
            self.ptr = NonNull::dangling();
            self.layout = ArrayLayout::empty();
            return Ok(());
        }

        // SAFETY: `target` is below the current capacity, whose layout was valid.
        let layout = unsafe { ArrayLayout::<T>::new_unchecked(target) };
        let new_ptr = KVmalloc::alloc(layout.into(), flags, NumaNode::NO_NODE)?;

        // SAFETY: the old buffer holds `self.len` initialised elements and the
        // new one, freshly allocated, has room for `target >= self.len`.
        unsafe { ptr::copy_nonoverlapping(self.as_ptr(), new_ptr.as_ptr().cast::<T>(), self.len) };

        // SAFETY: the old buffer came from `KVmalloc` with `self.layout`.
        unsafe { KVmalloc::free(self.ptr.cast(), self.layout.into()) };

        self.ptr = new_ptr.cast::<T>();
        self.layout = layout;
        Ok(())
    }
}
