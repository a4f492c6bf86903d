// Package lock provides named locks shared by goroutines, processes
// and, with a distributed backend, machines, whose holders publish who
// they are and why they hold the lock.
//
// A background installer validates its logon server first and locks
// second, and says what it is doing while it holds the lock:
//
//	c, err := lock.New("pcm-install", lock.WithPurpose("querying"))
//	...
//	v := servers.Validation() // a logon.List's; one per acquisition
//	lease, err := c.Acquire(ctx, lock.WithPrecondition(v.Check), lock.WithRecheck())
//	if err != nil {
//		return err // the logon server failed, or ctx ended: nothing is held
//	}
//	defer lease.Release()
//	lease.SetPurpose("installing Office 97")
//
// A foreground poller asks who holds it, which never takes the lock:
//
//	h, err := c.Holder(ctx) // h.PID, h.Purpose, h.Since; ErrNotHeld if free
//
// TryAcquire takes the lock when it is free, so what it returns must be
// released. The file the two programs share is package guarded.
//
// # What you can rely on
//
// At most one Lease of a name is live at a time, among all goroutines
// and processes that use the same lock directory (or mutex namespace),
// two Coordinators of one name in one process included.
//
// Acquire honours its context: when ctx ends first it returns an error
// matching ctx.Err() that says who held the lock (a *BusyError for
// errors.As), and leaves nothing behind: no goroutine still waiting and
// no hold of the lock afterwards.
// A precondition (WithPrecondition) runs before anything is locked; if
// it fails, panics or overruns ctx, the error matches ErrPrecondition
// and the lock was never held.
//
// The operating system releases the lock of a holder that dies, by
// kill -9 too, and waiters wake promptly (the table below says how).
// The next Lease then reports Abandoned, because what the lock guarded
// may be half-written; only that one Lease does (see Lease.Abandoned).
//
// Every acquisition gets a fencing token (Lease.Token) larger than any
// issued before for its name, across processes and restarts, so a
// resource can refuse a holder that has been superseded.
//
// The local backends check a holder record by its checksum and by its
// process (pid, start time, boot), so a dead holder is reported as
// ErrNotHeld (an *AbandonedError naming it) and a damaged record as
// ErrCorrupt, never as a live holder. Records are advisory: only the operating system (or the
// distributed engine) decides who owns the lock, and this package never
// kills a process, deletes a lock file or breaks a lock because of what
// a record says. Holder never contends, so watching a lock cannot make
// anyone else find it busy.
//
// A held lock is lost only if its lock file is removed or replaced, or
// a distributed backend's session ends; Lease.Lost says when. Every
// error matches ctx.Err() or a sentinel or type below, or is an
// *fs.PathError from the system; nothing ever runs unlocked.
//
// # Backends and systems
//
// The file backend (the default; NewFileBackend) locks NAME.lock in a
// lock directory and publishes records in NAME.holder beside it. Both
// files are created with mode 0666, so that a privileged service and a
// desktop program calling New with the same name share them, and they
// are never deleted. The named-mutex backend (NewNamedMutexBackend)
// locks a Windows kernel mutex, and module
// github.com/agentlock/agentlock/lock/etcdlock keeps locks in etcd.
//
//	OS                 default directory        lock         wait for release (death)
//	Linux              /run/lock                flock(2)     futex in the holder page (inotify close)
//	macOS              /var/tmp                 flock(2)     kqueue: NOTE_FUNLOCK (NOTE_FUNLOCK)
//	FreeBSD            /var/tmp                 flock(2)     kqueue: write (NOTE_CLOSE_WRITE)
//	NetBSD, DragonFly  /var/tmp                 flock(2)     kqueue: write (50 ms timer)
//	OpenBSD            none: WithDir required   flock(2)     kqueue: write (50 ms timer)
//	Windows            %ProgramData%\agentlock  LockFileEx   overlapped LockFileEx (kernel queue)
//	Solaris, illumos,  none                     none         New fails: errors.ErrUnsupported
//	AIX, others
//
// Waiters sleep in the kernel until a release or a holder's death
// wakes them; where the kernel reports no death, the timer in the table
// stands in. OpenBSD has no
// directory fit to be the default (its /var/tmp is cleaned by
// daily(8)). Solaris, illumos and AIX have only fcntl locks, which a
// process loses when it closes any descriptor of the file, so both
// local backends fail there. NewFileBackend says which directories and
// files are accepted, and what happens if the lock directory is
// cleaned while programs use it.
package lock
