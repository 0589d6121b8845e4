// The parts of the kernel crate that generated KUnit tests use, with the kernel's signatures
// (rust/kernel/alloc/kvec.rs, rust/kernel/alloc.rs, rust/kernel/error.rs, rust/kernel/prelude.rs,
// rust/kernel/page.rs), so that rustc type-checks a generated test as the kernel build would.
// Bodies are minimal: the tests are compiled here, never run.
// Only the stand-in's own items allow what their empty bodies need: the generated code gets every
// warning, as an error.

pub mod error {
    #[derive(Debug)]
    #[allow(dead_code)]
    pub struct Error(i32);

    impl From<crate::alloc::AllocError> for Error {
        fn from(_: crate::alloc::AllocError) -> Self {
            Error(-12)
        }
    }

    pub type Result<T = (), E = Error> = core::result::Result<T, E>;
}

pub mod alloc {
    #[derive(Clone, Copy, Debug)]
    #[allow(dead_code)]
    pub struct Flags(u32);

    pub mod flags {
        pub const GFP_KERNEL: super::Flags = super::Flags(0);
    }

    #[derive(Debug)]
    pub struct AllocError;

    pub mod allocator {
        pub struct KVmalloc;
    }

    pub mod kvec {
        use super::{allocator::KVmalloc, AllocError, Flags};
        use core::marker::PhantomData;

        pub struct Vec<T, A> {
            items: std::vec::Vec<T>,
            alloc: PhantomData<A>,
        }

        pub type KVVec<T> = Vec<T, KVmalloc>;

        #[allow(unused_variables)]
        impl<T, A> Vec<T, A> {
            pub const fn new() -> Self {
                Vec { items: std::vec::Vec::new(), alloc: PhantomData }
            }
            pub fn with_capacity(capacity: usize, flags: Flags) -> Result<Self, AllocError> {
                Ok(Self::new())
            }
            pub fn len(&self) -> usize {
                self.items.len()
            }
            pub fn is_empty(&self) -> bool {
                self.items.is_empty()
            }
            pub fn capacity(&self) -> usize {
                self.items.capacity()
            }
            pub fn as_ptr(&self) -> *const T {
                self.items.as_ptr()
            }
            pub fn as_slice(&self) -> &[T] {
                &self.items
            }
            pub fn push(&mut self, v: T, flags: Flags) -> Result<(), AllocError> {
                Ok(())
            }
            pub fn reserve(&mut self, additional: usize, flags: Flags) -> Result<(), AllocError> {
                Ok(())
            }
            pub fn pop(&mut self) -> Option<T> {
                None
            }
            pub fn truncate(&mut self, len: usize) {}
            pub fn clear(&mut self) {}
            pub fn retain(&mut self, f: impl FnMut(&mut T) -> bool) {}
        }

        #[allow(unused_variables)]
        impl<T> Vec<T, KVmalloc> {
            pub fn shrink_to(&mut self, min_capacity: usize, flags: Flags) -> Result<(), AllocError> {
                Ok(())
            }
        }

        impl<T, A> core::ops::Deref for Vec<T, A> {
            type Target = [T];
            fn deref(&self) -> &[T] {
                &self.items
            }
        }

        // kvec.rs: `impl<T: fmt::Debug, A: Allocator> fmt::Debug for Vec<T, A>`.
        impl<T: core::fmt::Debug, A> core::fmt::Debug for Vec<T, A> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(&self.items, f)
            }
        }

        // kvec.rs's `impl_slice_eq!`: `Vec<T, A> == [U; N]`, among others.
        impl<T: PartialEq<U>, U, A, const N: usize> PartialEq<[U; N]> for Vec<T, A> {
            fn eq(&self, other: &[U; N]) -> bool {
                self.items[..] == other[..]
            }
        }

        // GENERATED TESTS
    }
}

pub mod page {
    pub const PAGE_SIZE: usize = 4096;
}

pub mod bindings {
    #[allow(unused_variables)]
    pub unsafe fn is_vmalloc_addr(x: *const core::ffi::c_void) -> bool {
        false
    }
}

pub mod prelude {
    pub use crate::alloc::{flags::*, kvec::KVVec, kvec::Vec};
    pub use crate::error::{Error, Result};
}
