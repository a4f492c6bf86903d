// Package lock coordinates one named lock between goroutines,
// processes and, with a distributed backend, machines, and publishes
// who holds it and why.
//
// It was written for a background installer and a foreground poller
// that share one instruction file: the installer validates its logon
// server first and locks second (WithPrecondition), says what it is
// doing while it holds the lock (WithPurpose, Lease.SetPurpose), and the
// poller asks who holds the lock (Coordinator.Holder, or the BusyError
// from TryAcquire) to decide whether to tell the user anything.
//
//	c, err := lock.New("pcm-install", lock.WithPurpose("querying"),
//		lock.WithPrecondition(logonServer.Check))
//	lease, err := c.Acquire(ctx)
//	if err != nil { ... }
//	defer lease.Release()
//	lease.SetPurpose("installing Office 97")
//
// # What is guaranteed
//
// Mutual exclusion: at most one Lease of a name is live at a time,
// across all goroutines and processes that use the same lock directory
// (file backend) or the same object namespace (named-mutex backend).
// Two Coordinators of one name in one process exclude each other too.
//
// Fencing tokens: every acquisition gets a token larger than every
// token issued before it for that name, across processes and restarts.
// A token is the larger of the previous token plus one and the wall
// clock in nanoseconds, so if the stored token is lost (its file
// deleted or corrupted) tokens recover upward instead of repeating,
// provided the clock has not been set back by more than the time since
// the lost token was issued.
//
// Cancellation: Acquire returns ctx.Err() (wrapped) when ctx ends
// first, and leaves nothing behind: no goroutine still waiting, no open
// descriptor, and no hold of the lock afterwards, not even a brief one.
//
// Crashes: the operating system releases a lock whose holder dies,
// however it dies (kill -9 included), and waiters wake at once. The
// next Lease then reports Abandoned, because what the lock guarded may
// be half-written.
//
// Preconditions: a precondition runs before anything is locked or
// written. If it fails, panics or overruns the acquisition's context,
// the acquisition fails with an error matching ErrPrecondition and the
// lock was never held. WithRecheck repeats it right after locking and
// releases at once if it fails.
//
// # What is advisory
//
// Holder records are what holders say about themselves: process id,
// host, purpose, start time of the hold, token, and what identifies
// the process beyond its pid (its start time, the boot). They are
// checked for integrity (a checksum) and liveness (a record whose
// process is gone, or whose pid now belongs to another process, is
// reported as ErrNotHeld), but only the operating system decides who
// owns the lock. This package never kills a process, deletes a lock
// file or breaks a lock because of what a record says. A corrupt record
// is an error for Holder and never blocks or breaks the lock.
//
// Holder never contends: it reads the published record and never
// touches the lock, so watching a lock in a tight loop cannot make
// anyone else see it busy.
//
// Right after a holder takes the lock there is a window of a few
// microseconds before its record is published; a BusyError from that
// window may carry a zero Holder.
//
// # Names
//
// A name is 1 to 64 bytes of lower-case ASCII letters, digits, '.', '_'
// and '-', starting with a letter or digit and not ending with '.'; the
// names Windows reserves for devices (con, nul, com1, ...) are refused.
// The rules are the same on every operating system so that a name means
// the same lock everywhere, which is why upper case is refused rather
// than folded. Anything else is an error matching ErrInvalidName before
// any file is touched.
//
// # The file backend
//
// The default backend locks the file NAME.lock in the lock directory
// and publishes records in NAME.holder beside it. Both files are
// created on first use with mode 0666 regardless of the umask (every
// local user can open them, so that a service and a desktop program
// can share them; any local user who can open them can also hold the
// lock, which is inherent in a lock shared across users), are opened
// with O_NOFOLLOW and close-on-exec, and are never deleted. A symbolic
// link, a hard link or anything but a regular file at either path is
// refused with an error matching ErrUnsafePath, and so is a directory
// that an untrusted user could swap files in: one that is a symbolic
// link, is owned by someone other than root or the caller, or is
// writable by group or others without the sticky bit. Read-only file
// systems, permission errors and ENOLCK are returned as *fs.PathError;
// nothing ever runs unlocked.
//
// The default directory is chosen so that a privileged service and an
// unprivileged desktop program calling New with the same name contend
// on the same lock:
//
//	OS              default directory        lock             wait for release
//	Linux           /run/lock                flock(2)         inotify on the lock file
//	macOS, BSDs     /var/tmp                 flock(2)         kqueue on the lock file
//	Windows         %ProgramData%\agentlock  LockFileEx       overlapped LockFileEx
//
// The default directory must be owned by root (on Windows, by SYSTEM or
// the Administrators group); if it is not, New fails rather than use
// another location.
//
// Waiting is event-driven: a waiter sleeps in the kernel and is woken
// when the holder releases (the releaser signals sleepers through the
// shared holder page) or dies, with a bounded fallback interval only as
// a safety net. See waitLockFile in the platform files for the details
// and BENCHMARKS.md for the measurements.
//
// The files of a lock are opened once per process and kept open for
// the life of the process.
//
// On Windows the lock directory must be owned by SYSTEM, the
// Administrators group or the caller, and must not be a reparse point
// (symbolic link or junction); the default directory is created with a
// DACL that lets SYSTEM and Administrators do anything and
// authenticated users create, read and write files but not delete
// them. Under Wine, which does not implement overlapped LockFileEx
// waits, a waiter polls (1 ms to 16 ms) instead.
//
// # The named-mutex backend
//
// NewNamedMutexBackend, used through WithBackend, locks a Windows
// kernel mutex (Global\agentlock.NAME by default, Local\agentlock.NAME
// with WithScope(ScopeLocal)) and publishes records in a holder file as
// the file backend does, so records, tokens, Abandoned, cancellation
// and Holder behave the same. On other systems it is a documented
// equivalent, a flock(2) on _mutex.NAME.lock in the lock directory,
// never a no-op. See NewNamedMutexBackend for the security rules on
// Windows.
package lock
