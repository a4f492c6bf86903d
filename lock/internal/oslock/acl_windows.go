package oslock

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The Windows counterpart of the Unix rule "owned by root or the
// caller, and sticky if others may write": a lock directory (and a
// named mutex) is safe if nobody but a trusted user (see trustedUser)
// can delete, rename or replace what is in it, or change who may.
//
// The owner of an object may always change its DACL, unless the DACL
// has an OWNER RIGHTS entry, which then alone says what the owner may
// do. So an object owned by an untrusted user is accepted if its DACL
// has such an entry and grants that user nothing dangerous: this is
// what lets a service use the default directory (or mutex) that a
// desktop program created first, and the other way round, since both
// create it with an OWNER RIGHTS entry (see dirSDDL and mutexSDDL).

// Rights that an untrusted user must not have.
const (
	// On the directory itself: delete or rename it, delete files in
	// it, change its DACL or owner.
	dangerousOnDir = windows.DELETE | windows.WRITE_DAC | windows.WRITE_OWNER |
		fileDeleteChild | windows.GENERIC_ALL
	// On the files it passes its entries on to, and on a mutex.
	dangerousOnFile = windows.DELETE | windows.WRITE_DAC | windows.WRITE_OWNER | windows.GENERIC_ALL
)

// securityAttributes returns the attributes that create an object with
// the security descriptor sddl (in the Security Descriptor Definition
// Language).
func securityAttributes(sddl string) (*windows.SecurityAttributes, error) {
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return nil, err
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	return sa, nil
}

// checkSecurity returns an error matching ErrUnsafePath unless the
// object behind h is safe by the rule above. dir says whether it is a
// directory, whose inheritable entries apply to the files in it.
func checkSecurity(h windows.Handle, typ windows.SE_OBJECT_TYPE, what string, dir bool) error {
	sd, err := windows.GetSecurityInfo(h, typ, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("reading the security of the %s: %w", what, err)
	}
	return sdProblem(sd, what, dir, trustedUser)
}

// sdProblem applies the rule to a security descriptor, with trusted
// telling the trusted users.
func sdProblem(sd *windows.SECURITY_DESCRIPTOR, what string, dir bool, trusted func(*windows.SID) bool) error {
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return fmt.Errorf("%w: the %s has no owner", ErrUnsafePath, what)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		// No DACL, or a NULL one: everyone may do anything.
		return fmt.Errorf("%w: the %s has no access control list, so everyone has full control", ErrUnsafePath, what)
	}
	ownerTrusted := trusted(owner)
	ownerRights := false
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return fmt.Errorf("%w: reading the access control list of the %s: %v", ErrUnsafePath, what, err)
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		// Only an entry that applies to the object itself (not inherit
		// only) takes the owner's implicit rights away.
		if sid.IsWellKnown(windows.WinCreatorOwnerRightsSid) && ace.Header.AceFlags&windows.INHERIT_ONLY_ACE == 0 {
			ownerRights = true
		}
		switch ace.Header.AceType {
		case windows.ACCESS_DENIED_ACE_TYPE, accessDeniedObjectACEType, accessDeniedCallbackACEType, accessDeniedCallbackObjectACEType:
			continue // a denial takes nothing away from safety
		case windows.ACCESS_ALLOWED_ACE_TYPE, accessAllowedCallbackACEType:
		default:
			return fmt.Errorf("%w: the %s has an access control entry of unexpected type %d", ErrUnsafePath, what, ace.Header.AceType)
		}
		switch {
		case trusted(sid),
			sid.IsWellKnown(windows.WinCreatorOwnerRightsSid) && ownerTrusted,
			// Replaced, in a file created here, by its creator, who
			// may do with its own file what it likes (as on Unix).
			sid.IsWellKnown(windows.WinCreatorOwnerSid):
			continue
		}
		var bad windows.ACCESS_MASK
		switch {
		case !dir:
			bad = ace.Mask & dangerousOnFile
		default:
			if ace.Header.AceFlags&windows.INHERIT_ONLY_ACE == 0 {
				bad |= ace.Mask & dangerousOnDir
			}
			if ace.Header.AceFlags&windows.OBJECT_INHERIT_ACE != 0 {
				bad |= ace.Mask & dangerousOnFile
			}
		}
		if bad != 0 {
			return fmt.Errorf("%w: the %s grants %s access 0x%x, which lets it delete, replace or re-permission what the lock relies on", ErrUnsafePath, what, sid, uint32(bad))
		}
	}
	if !ownerTrusted && !ownerRights {
		return fmt.Errorf("%w: the %s is owned by %s, which is neither SYSTEM, Administrators nor the caller, and its access control list has no OWNER RIGHTS entry to keep the owner from changing it", ErrUnsafePath, what, owner)
	}
	return nil
}

// fileDeleteChild is FILE_DELETE_CHILD, which x/sys/windows does not name.
const fileDeleteChild = 0x40

// ACE types that x/sys/windows does not name.
const (
	accessAllowedCallbackACEType      = 9
	accessDeniedObjectACEType         = 6
	accessDeniedCallbackACEType       = 10
	accessDeniedCallbackObjectACEType = 12
)

// trustedUser reports whether sid may own a lock directory or a named
// mutex, or hold dangerous rights on it: LocalSystem, the Administrators
// group (the owner of what an elevated administrator creates), the user
// this process runs as, or the default owner of what this process
// creates (its token's owner, which Windows only lets be the user or a
// group the user may assign as owner, such as Administrators).
func trustedUser(sid *windows.SID) bool {
	if sid.IsWellKnown(windows.WinLocalSystemSid) || sid.IsWellKnown(windows.WinBuiltinAdministratorsSid) {
		return true
	}
	tok := windows.GetCurrentProcessToken()
	if u, err := tok.GetTokenUser(); err == nil && sid.Equals(u.User.Sid) {
		return true
	}
	if o, err := tokenOwner(tok); err == nil && sid.Equals(o) {
		return true
	}
	return false
}

// tokenOwner returns the default owner of objects created with tok.
func tokenOwner(tok windows.Token) (*windows.SID, error) {
	n := uint32(128)
	for {
		b := make([]byte, n)
		err := windows.GetTokenInformation(tok, windows.TokenOwner, &b[0], n, &n)
		if err == windows.ERROR_INSUFFICIENT_BUFFER {
			continue
		}
		if err != nil {
			return nil, err
		}
		// TOKEN_OWNER is a single pointer to a SID inside b.
		sid := *(**windows.SID)(unsafe.Pointer(&b[0]))
		return sid.Copy()
	}
}
