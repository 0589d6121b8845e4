/*
 * binder's all_procs (a KVVec<Arc<Process>>) under the v6 shrink policy, on the
 * explicit-state explorer's instance: PAGE_SIZE 64, 8-byte elements, every
 * allocator outcome, and a capacity bound BOUND (a registration that would grow
 * past it is not taken). The rules are models/binder.py, models/vec.py and
 * models/allocator.py for that platform (x86_64's preset at a 64-byte page:
 * slab classes 8..128 folded to 8-byte alignment, KMALLOC_MAX_SIZE 64 KiB, no
 * huge vmalloc mappings). A state is (len as count, layout, kind, physical): the
 * explorer's canonical state, whose request is always the layout's bytes.
 *
 * bench/spin.py runs it:  spin -a -DBOUND=N binder.pml; cc -O2 -DSAFETY pan.c; ./pan
 * and compares pan's "states, stored" with verify's explorer.
 */

#ifndef BOUND
#define BOUND 40
#endif
#define PAGE 64
#define ELEM 8
#define KMALLOC_MAX 65536
#define NONE 0
#define KM 1
#define VM 2

int count, layout, phys;
byte kind;

/* Scratch of one step: zero again at the end of every step, so no state differs by it. */
int nb, nk, np, goal, pages;
bool km_ok, vm_ok, ok;

#define CLEAR  nb = 0; nk = 0; np = 0; goal = 0; pages = 0; km_ok = 0; vm_ok = 0; ok = 0

/* ksize() of a fresh kmalloc(nb): a slab class, or a power of two of pages. */
inline kmalloc_physical() {
    if
    :: nb <= 8 -> np = 8
    :: nb > 8 && nb <= 16 -> np = 16
    :: nb > 16 && nb <= 32 -> np = 32
    :: nb > 32 && nb <= 64 -> np = 64
    :: nb > 64 && nb <= 96 -> np = 96
    :: nb > 96 && nb <= 128 -> np = 128
    :: nb > 128 ->
        pages = (nb + PAGE - 1) / PAGE;
        np = 1;
        do
        :: np < pages -> np = np * 2
        :: else -> break
        od;
        np = np * PAGE
    fi
}

/* kvmalloc(nb): kmalloc first; above a page, vmalloc (small pages here). */
inline kvmalloc() {
    if
    :: nb <= KMALLOC_MAX && km_ok -> nk = KM; kmalloc_physical(); ok = 1
    :: else ->
        if
        :: nb > PAGE && vm_ok -> nk = VM; np = (nb + PAGE - 1) / PAGE * PAGE; ok = 1
        :: else -> ok = 0
        fi
    fi
}

/* kvrealloc of the current buffer (cur: its kind, NONE for NULL) to nb > 0 bytes. */
inline kvrealloc(cur) {
    if
    :: cur != NONE && nb <= phys -> nk = cur; np = phys; ok = 1     /* in place */
    :: cur == VM && nb > phys ->                                    /* vrealloc: a new area */
        if
        :: vm_ok -> nk = VM; np = (nb + PAGE - 1) / PAGE * PAGE; ok = 1
        :: else -> ok = 0
        fi
    :: cur == KM && nb > phys ->                                    /* krealloc, then kvmalloc */
        if
        :: nb <= KMALLOC_MAX && km_ok -> nk = KM; kmalloc_physical(); ok = 1
        :: else -> kvmalloc()
        fi
    :: cur == NONE -> kvmalloc()
    fi
}

/* Vec::push (count is len): room for one more, or grow to max(2 * capacity, count + 1). */
inline register() {
    if
    :: layout > count -> count++
    :: else ->
        goal = (2 * layout > count + 1 -> 2 * layout : count + 1);
        nb = goal * ELEM;
        if
        :: layout == 0 -> kvrealloc(NONE)
        :: else -> kvrealloc(kind)
        fi;
        if
        :: ok && goal <= BOUND -> layout = goal; kind = nk; phys = np; count++
        :: else -> skip   /* failed: unchanged; past the bound: not explored */
        fi
    fi
}

/* retain of one process, then v6: below a quarter, shrink_to(count * 2), its error ignored. */
inline deregister() {
    count--;
    if
    :: count < layout / 4 ->
        goal = (count * 2 > count -> count * 2 : count);
        if
        :: layout > goal && kind != VM ->                           /* realloc: free at 0, else krealloc */
            if
            :: goal == 0 -> layout = 0; kind = NONE; phys = 0
            :: else ->
                nb = goal * ELEM;
                kvrealloc(kind);
                if
                :: ok -> layout = goal; kind = nk; phys = np
                :: else -> skip
                fi
            fi
        :: layout > goal && kind == VM && (layout * ELEM + PAGE - 1) / PAGE > (goal * ELEM + PAGE - 1) / PAGE ->
            /* a vmalloc buffer is replaced only if that frees a page: free at 0, else alloc, copy, free */
            if
            :: goal == 0 -> layout = 0; kind = NONE; phys = 0
            :: else ->
                nb = goal * ELEM;
                kvmalloc();
                if
                :: ok -> layout = goal; kind = nk; phys = np
                :: else -> skip
                fi
            fi
        :: else -> skip
        fi
    :: else -> skip
    fi
}

active proctype all_procs() {
    do
    :: d_step { km_ok = 1; vm_ok = 1; register(); CLEAR }
    :: d_step { km_ok = 1; vm_ok = 0; register(); CLEAR }
    :: d_step { km_ok = 0; vm_ok = 1; register(); CLEAR }
    :: d_step { km_ok = 0; vm_ok = 0; register(); CLEAR }
    :: d_step { count > 0; km_ok = 1; vm_ok = 1; deregister(); CLEAR }
    :: d_step { count > 0; km_ok = 1; vm_ok = 0; deregister(); CLEAR }
    :: d_step { count > 0; km_ok = 0; vm_ok = 1; deregister(); CLEAR }
    :: d_step { count > 0; km_ok = 0; vm_ok = 0; deregister(); CLEAR }
    od
}
