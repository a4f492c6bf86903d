// Package lock coordinates one named lock between goroutines,
// processes and, with a distributed backend, machines, and publishes
// who holds it and why.
//
// It was written for a background installer and a foreground poller
// that share one instruction file: the installer validates its logon
// server first and locks second (WithPrecondition), says what it is
// doing while it holds the lock (WithPurpose, Lease.SetPurpose), and the
// poller asks who holds the lock (Coordinator.Holder, which never takes
// it) to decide whether to tell the user anything.
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
// TryAcquire takes the lock when it is free, so what it returns must be
// released; a Lease dropped without Release is released only when the
// garbage collector finds it.
//
// The instruction file itself is package guarded
// (github.com/agentlock/agentlock/lock/guarded): a file the holder
// replaces atomically, fenced by its lease's token, and anyone reads.
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
// deleted, truncated or corrupted) tokens recover upward instead of
// repeating, provided the clock has not been set back by more than the
// time since the lost token was issued. Each process also remembers the
// highest token it has issued or seen for each lock, so a stored token
// that goes back while it runs never takes its tokens back. Tokens never
// wrap: a stored token is trusted only on a page that carries this
// package's header and only up to 24 hours ahead of the clock (a genuine
// token is ahead of the clock only by how far the clock was set back);
// beyond that the acquisition fails with an error matching ErrCorrupt
// whose message says how to recover (stop the programs using the lock
// and remove NAME.holder, or wait for the clock to pass the token), and
// the lock is released again at once.
//
// Cancellation: when ctx ends first, Acquire returns an error matching
// ctx.Err() that says how long it waited and who held the lock (a
// *BusyError for errors.As), and leaves nothing behind: no goroutine
// still waiting, no descriptor beyond those kept for the life of the
// process (see the file backend), and no hold of the lock afterwards,
// not even a brief one.
// (On Windows an overlapped LockFileEx that the kernel grants in the same
// instant as the cancellation is released before Acquire returns: the
// lock is never held after Acquire has returned an error.)
//
// Crashes: the operating system releases a lock whose holder dies,
// however it dies (kill -9 included), and waiters wake promptly: on
// Linux through the process's inotify watch for the dying process's
// close of the lock file (within a millisecond or two), on Windows
// through the kernel's own queue, on macOS and FreeBSD through the
// kqueue notes that report the dead holder's unlock (NOTE_FUNLOCK) or
// close (NOTE_CLOSE_WRITE), and on NetBSD, OpenBSD and DragonFly, whose
// kqueue reports neither,
// within the 50 ms fallback interval. The next Lease then reports
// Abandoned, because what the lock guarded may be half-written. Only
// that one Lease does, whichever program holds it: a program that
// repairs after a crash should decide from the data's own state (an
// entry still marked "installing" while it holds the lock) and use
// Abandoned as a hint, and programs that only watch should use Holder,
// which never takes the lock, so that they cannot take the flag from
// the program that needs it (see Lease.Abandoned).
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
// On macOS and the BSDs the kqueue watch of a waiter is a help, not a
// requirement: where it cannot be set up (or the kernel refuses the
// close notes) the waiter polls at the 50 ms interval. On OpenBSD
// /var/tmp is a link to /tmp, where daily(8) deletes files nobody has
// read for a week, and no other directory is root-owned, sticky and
// left alone, so New without WithDir fails with an error matching
// errors.ErrUnsupported. Solaris, illumos and AIX have only fcntl
// locks, which a process loses when it closes any descriptor of the
// file; the file and named-mutex backends fail there at New with an
// error matching errors.ErrUnsupported.
//
// On Unix the default directory must be owned by root (on Windows see
// below); if it is not, New fails rather than use another location.
//
// Waiting is event-driven: a waiter sleeps in the kernel and is woken
// when the holder releases (the releaser signals sleepers through the
// shared holder page) or dies, with a bounded fallback interval only as
// a safety net (the table above says how each system waits).
//
// What a process keeps open: for each lock name it has used, its two
// files (opened once, kept for the life of the process, and mapped: one
// page); on Linux, in addition, one inotify instance for the whole
// process, with one watch on each of those files, and one goroutine
// that reads it (on macOS and the BSDs, likewise one kqueue).
// The instance is shared because the per-user limit on inotify
// instances is small (128 by default, for all of a user's programs)
// while watches are cheap (thousands per user): a process can
// use thousands of names and every other program of its user keeps its
// own watches. If the instance or a watch cannot be had (the user's
// limits are exhausted by other programs), the locks concerned still
// work: each acquisition then checks its files with two system calls,
// Lease.Lost stays open, and a waiter sees a holder's death within
// 50 ms instead of milliseconds.
//
// The lock directory must not be cleaned while programs use it: no tmp
// cleaner, uninstaller or administrator should remove or replace lock
// or holder files there (a WithDir under /tmp or /var/tmp is exposed to
// cleaners that remove files not modified for days, which lock files
// never are). If it is cleaned anyway, the package keeps mutual
// exclusion among the programs that then open the new files, and says
// so where it cannot hold:
//
//   - after every lock, and before it publishes a record, a process
//     checks that the file it locked is still the file at the path (same
//     device and inode, linked); if not, it unlocks, opens the path anew
//     and tries again, as part of waiting (the context is honoured);
//     on Linux, macOS and the BSDs the watch tells when to check, so an
//     uncontended acquisition makes no system call for it; on Windows,
//     which has no watch here, the check is made after a wait and at a
//     process's first acquisition only;
//   - a holder whose lock file is removed or replaced while it holds has
//     lost its exclusion, since a process opening the path now locks
//     another file: on Linux, macOS and the BSDs (an inotify or kqueue
//     watch) its Lease.Lost closes within milliseconds of the change,
//     SetPurpose and Release return errors matching ErrLost, it
//     publishes nothing more on the holder page, and guarded files
//     (package guarded) refuse its writes; on Windows a held lock file cannot be removed
//     or renamed (it is opened without delete sharing), so this cannot
//     happen while it is held;
//   - a holder whose holder file alone is removed or replaced keeps the
//     lock, and (where there is a watch) publishes its record and token
//     on the file now at the path; it never publishes on a page that is
//     no longer at the path;
//   - a holder file truncated by anyone (it is writable by every user)
//     is given its page back by the first process that touches it, and
//     the holder republishes its record (on Linux at once, through the
//     watch; elsewhere at its next SetPurpose); meanwhile Holder reports an
//     error matching ErrCorrupt, never ErrNotHeld for a held lock, waits
//     go on, and Release still returns nil. A fault touching a page that
//     cannot be restored is an error matching ErrCorrupt that names the
//     file and says SIGBUS. The page's blocks are allocated when the
//     file is created (fallocate on Linux), so a full file system is
//     ENOSPC at the first use of a name rather than a fault later.
//     (A program built with the race detector is the exception: a fault
//     the race runtime takes on its own stack cannot be recovered, and
//     once ended such a holder; a page truncated under it can kill it.)
//
// A lock or holder file that another user owns with a mode other than
// 0666 (a planted 0600 file would let its owner lock every third user
// out) is given mode 0666 when root or its owner opens it. A user who
// cannot open it gets an error matching ErrUnsafePath that names its
// owner and mode; root, its owner or an operator (chmod 0666) can fix it.
//
// A process that locks NAME.lock without this package (flock(1),
// Python's fcntl.flock, another library) is excluded like any holder,
// but publishes no record. On Linux, Holder and BusyError then report it
// from /proc/locks: its pid, with Holder.Foreign set. A holder of this
// package publishes its record a moment after it locks, so a holder
// that has published nothing is given 20 ms to do so before it is called
// foreign (for a moment after a holder file is recreated, a holder of
// this package can still show as foreign). Elsewhere the lock shows as busy with a zero Holder, and Holder
// says ErrNotHeld. Such a holder does not wake waiters when it unlocks
// without closing the file, so while the holder page has no live
// record, waiters look again every 10 ms instead of sleeping (its exit
// is seen at once, through the watch).
//
// On Windows the lock directory must not be a reparse point (symbolic
// link or junction), and its DACL is checked as Unix checks modes: no
// user but SYSTEM, Administrators and the caller may delete files in it
// (FILE_DELETE_CHILD), delete or rename it, change its DACL or owner,
// or be passed DELETE, WRITE_DAC or WRITE_OWNER on the files created in
// it (the creator of a file, CREATOR OWNER, excepted); and it must be
// owned by one of those three, or carry an OWNER RIGHTS entry, which
// takes away the owner's implicit right to change the DACL. The default
// directory is created with a DACL that lets SYSTEM and Administrators
// do anything, lets authenticated users create files and read and write
// them but neither delete them, change their attributes nor link to
// them, and limits owners the same way through OWNER RIGHTS; so a
// LocalSystem service and a desktop program can both use it whichever
// of them created it, and neither can lock the other out. Lock and
// holder files are opened without FILE_SHARE_DELETE: as every process
// keeps them open, nobody can rename or delete them while anyone uses
// the lock.
//
// The service accounts LocalSystem, LocalService, NetworkService and
// virtual accounts (NT SERVICE\NAME) are all authenticated users, so
// each shares the default directory, and the named mutexes, with
// desktop programs whichever of them starts first. A default directory
// or mutex that fails the rule above (for instance one that another user
// created without the OWNER RIGHTS entry, as versions of this package
// before it did) is refused (ErrUnsafePath) until an administrator
// removes it.
//
// A waiting goroutine stays locked to the OS thread that issued its
// overlapped LockFileEx until the request completes or is withdrawn,
// since Windows cancels a pending request whose thread exits. A
// holder's process is dead once its handle is signalled, whatever its
// exit code (a process may exit with 259, STILL_ACTIVE); a process this
// one may not open (a service's, seen from a desktop program) is looked
// up in the system's process list, which gives its creation time
// without opening it, so a reused pid is told apart there too. Under
// Wine, which does not complete overlapped LockFileEx waits, a waiter
// instead sleeps on a named event that releasers set (through the
// shared page's waiters flag, as on Linux) and on the holder's process
// handle, with a 100 ms fallback.
//
// # The named-mutex backend
//
// NewNamedMutexBackend, used through WithBackend, locks a Windows
// kernel mutex (Global\agentlock.NAME by default, Local\agentlock.NAME
// with WithScope(ScopeLocal), which in session 0, whose Local\
// namespace is the global one, is Global\agentlock.NAME too) and
// publishes records in a holder file as
// the file backend does, so records, tokens, Abandoned, cancellation
// and Holder behave the same. On other systems it is a documented
// equivalent, a flock(2) on _mutex.NAME.lock in the lock directory,
// never a no-op. See NewNamedMutexBackend for the security rules on
// Windows.
package lock
