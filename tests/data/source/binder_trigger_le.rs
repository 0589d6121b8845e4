// SPDX-License-Identifier: GPL-2.0

//! A test fixture for `verify source`: a binder context in the style of the
//! kernel's `drivers/android/binder/context.rs`, with the process list's shrink
//! policy changed by hand for a test: `<=` where v6 has `<` (once at most a quarter
//! of the slots are used, shrink to twice the length). Written for this
//! project; not the kernel's text.

use kernel::{alloc::kvec::KVVec, prelude::*, sync::{Arc, Mutex}};

use crate::process::Process;

/// The processes of one context, behind the context's lock.
struct Manager {
    all_procs: KVVec<Arc<Process>>,
}

/// One binder device file.
#[pin_data]
pub(crate) struct Context {
    #[pin]
    manager: Mutex<Manager>,
}

impl Context {
    /// Adds `proc` to the context's processes; fails when the list cannot grow.
    pub(crate) fn register_process(self: &Arc<Self>, proc: Arc<Process>) -> Result {
        if !Arc::ptr_eq(self, &proc.ctx) {
            pr_err!("register_process: the process belongs to another context\n");
            return Err(EINVAL);
        }
        self.manager.lock().all_procs.push(proc, GFP_KERNEL)?;
        Ok(())
    }

    /// Drops `proc` from the context's processes, and gives memory back after a spike.
    pub(crate) fn deregister_process(self: &Arc<Self>, proc: &Arc<Process>) {
        if !Arc::ptr_eq(self, &proc.ctx) {
            pr_err!("deregister_process: the process belongs to another context\n");
            return;
        }
        let mut manager = self.manager.lock();
        manager.all_procs.retain(|p| !Arc::ptr_eq(p, proc));

        // Wait until three quarters of the slots are unused, then keep twice
        // the length, so that a few new processes do not make it grow again.
        let len = manager.all_procs.len();
        let cap = manager.all_procs.capacity();
        if len <= cap / 4 {
            // Shrinking only saves memory: the list is fine if it fails.
            let _ = manager.all_procs.shrink_to(len * 2, GFP_KERNEL);
        }
    }
}
