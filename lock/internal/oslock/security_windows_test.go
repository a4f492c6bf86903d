package oslock

import (
	"errors"
	"testing"

	"golang.org/x/sys/windows"
)

// TestDirSecurityRule checks the directory and mutex rule on security
// descriptors that Windows (or Wine's advapi32) builds from SDDL: in
// particular that a directory made by this package is accepted whoever
// created it, which is what lets a service use the default directory a
// desktop program created, and the other way round.
func TestDirSecurityRule(t *testing.T) {
	const other = "S-1-5-21-1-2-3-1001" // a second account
	trusted := func(sid *windows.SID) bool {
		return sid.IsWellKnown(windows.WinLocalSystemSid) || sid.IsWellKnown(windows.WinBuiltinAdministratorsSid)
	}
	for _, tc := range []struct {
		name, sddl string
		dir, ok    bool
	}{
		{"ours, created by SYSTEM", "O:SY" + dirSDDL, true, true},
		{"ours, created by another user", "O:" + other + dirSDDL, true, true},
		{"ours without OWNER RIGHTS, created by another user", "O:" + other + "D:P(A;OICI;FA;;;SY)(A;;0x1200ab;;;AU)(A;OIIO;0x12008f;;;AU)", true, false},
		{"OWNER RIGHTS may change the DACL", "O:" + other + "D:P(A;OICI;FA;;;SY)(A;;0x1600ab;;;OW)", true, false},
		{"everyone may delete files", "O:SYD:P(A;OICI;FA;;;SY)(A;;0x1200ab;;;WD)(A;;0x40;;;WD)", true, false},
		{"users may delete each other's files", "O:SYD:P(A;OICI;FA;;;SY)(A;OIIO;0x10000;;;AU)", true, false},
		{"users may rename the directory", "O:SYD:P(A;OICI;FA;;;SY)(A;;0x10000;;;AU)", true, false},
		{"creators may delete their own files", "O:SYD:P(A;OICI;FA;;;SY)(A;OIIO;FA;;;CO)(A;;0x1200ab;;;AU)", true, true},
		{"a denial is no danger", "O:SYD:P(D;OICI;FA;;;WD)(A;OICI;FA;;;SY)", true, true},
		{"our mutex, created by another user", "O:" + other + mutexSDDL, false, true},
		{"a mutex whose creator may re-permission it", "O:" + other + "D:(A;;0x1f0001;;;SY)(A;;0x120001;;;AU)", false, false},
		{"a mutex anyone may re-permission", "O:SYD:(A;;0x1f0001;;;SY)(A;;0x40000;;;WD)", false, false},
	} {
		sd, err := windows.SecurityDescriptorFromString(tc.sddl)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = sdProblem(sd, "object", tc.dir, trusted)
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: %v, want ErrUnsafePath", tc.name, err)
		}
	}

	// A NULL DACL (everyone may do anything; not expressible in SDDL
	// under Wine).
	sd, err := windows.NewSecurityDescriptor()
	if err != nil {
		t.Fatal(err)
	}
	sys, err := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.SetOwner(sys, false); err != nil {
		t.Fatal(err)
	}
	if err := sd.SetDACL(nil, true, false); err != nil {
		t.Fatal(err)
	}
	if err := sdProblem(sd, "object", true, trusted); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("NULL DACL: %v, want ErrUnsafePath", err)
	}
}

// TestDefaultDirACL: the default directory passes the directory rule
// for every user of the machine (SYSTEM and Administrators trusted,
// nobody else), not only for the user who created it. Wine neither
// stores nor enforces DACLs on files.
func TestDefaultDirACL(t *testing.T) {
	skipOnWine(t, "Wine ignores the security attributes of CreateDirectory and does not store DACLs")
	dir, err := defaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDir(dir, true); err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("default directory %s: %s", dir, sd)
	// Safe for any user of the machine, not only for its creator.
	sysOrAdmins := func(sid *windows.SID) bool {
		return sid.IsWellKnown(windows.WinLocalSystemSid) || sid.IsWellKnown(windows.WinBuiltinAdministratorsSid)
	}
	if err := sdProblem(sd, "directory", true, sysOrAdmins); err != nil {
		t.Error(err)
	}
}
