package poll

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// EnvNotify is the environment variable that programs are encouraged
// to read their notification policy from (see PolicyFromEnv), so that
// users of every program built on this package have one switch.
const EnvNotify = "AGENTLOCK_NOTIFY"

// ErrInvalidPolicy reports a policy text that ParsePolicy, PolicyFromEnv
// or PolicyFromFile refuses. The error is a *SpecError.
var ErrInvalidPolicy = errors.New("poll: invalid notification policy")

// A SpecError reports a policy text that could not be read. The
// functions that return it also return the default policy they were
// given, so a typo never silently turns notifications on or off.
//
// Its message says what is wrong and where, not what happens next,
// which is the program's choice: one that goes on with the default
// should say so ("... (using the default policy)"), and one that exits
// on a bad command-line flag should not.
type SpecError struct {
	Source string // where the text came from: "$NAME", a file path, or "" (ParsePolicy)
	Spec   string // the whole text
	Term   string // the term at fault, if one is
	Err    error  // what is wrong
}

func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString("poll: invalid notification policy")
	if e.Source != "" {
		b.WriteString(" in " + e.Source)
	}
	if e.Spec != "" {
		fmt.Fprintf(&b, " %q", e.Spec)
	}
	if e.Term != "" {
		fmt.Fprintf(&b, ": term %q", e.Term)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

// Unwrap returns ErrInvalidPolicy and the cause.
func (e *SpecError) Unwrap() []error { return []error{ErrInvalidPolicy, e.Err} }

// ParsePolicy reads a notification policy from text. On error it
// returns def and a *SpecError; an empty text (only spaces and
// separators) gives def and no error.
//
// # Grammar
//
// A policy text is a list of terms separated by ',' or ';', with spaces
// around terms and around '=' ignored:
//
//	never | off | false | 0     no notifications (must stand alone)
//	always | on | true | 1      every busy event (must stand alone)
//	default                     the program's default policy (def)
//	after=DURATION              only once the lock has been busy that long (After)
//	purpose=PATTERN|PATTERN...  only for holders with a matching purpose (Purposes)
//	every=DURATION              at most once per holder per DURATION (RateLimit)
//
// Keywords and keys are case-insensitive; patterns are not. DURATION is
// a Go duration such as 30s, 1m30s or 500ms (after= accepts 0, every=
// needs more than 0). A PATTERN is a purpose, or a purpose prefix
// followed by '*' ("installing*"), and may contain spaces but not ',',
// ';' or '|'; a '*' is allowed only at the end. Several purpose= terms
// add up: purpose=installing*,purpose=updating* is the same as
// purpose=installing*|updating*. after= and every= may each appear
// once.
//
// The terms of a list must all agree for an event to be notified, and
// their order does not matter: the result is All(purposes, after,
// default, every), with the rate limit last so that it counts only
// events that are really notified. Examples:
//
//	AGENTLOCK_NOTIFY=never                         the message is off
//	AGENTLOCK_NOTIFY=after=30s                     only after 30 s of waiting
//	AGENTLOCK_NOTIFY=purpose=installing*;every=5m  installs only, at most every 5 min
//	AGENTLOCK_NOTIFY=default,purpose=installing*   the program's policy, installs only
func ParsePolicy(spec string, def Policy) (Policy, error) {
	return parsePolicy("", spec, def)
}

// PolicyFromEnv reads a notification policy from the environment
// variable name (usually EnvNotify), in the grammar of ParsePolicy. An
// unset or empty variable gives def and no error; a bad value gives def
// and a *SpecError that names the variable, which the program should
// show or log.
func PolicyFromEnv(name string, def Policy) (Policy, error) {
	return parsePolicy("$"+name, os.Getenv(name), def)
}

// maxPolicyFile bounds what PolicyFromFile reads.
const maxPolicyFile = 64 << 10

// PolicyFromFile reads a notification policy from a small text file.
// The file holds the grammar of ParsePolicy, where line ends also
// separate terms and '#' starts a comment that runs to the end of the
// line:
//
//	# /etc/agentlock/notify.conf
//	purpose = installing*
//	after = 30s
//
// A file that does not exist gives def and no error (the file is
// optional); one that cannot be read, is larger than 64 KiB or does not
// parse gives def and an error.
func PolicyFromFile(path string, def Policy) (Policy, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return def, nil
	}
	if err != nil {
		return def, fmt.Errorf("poll: notification policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return def, fmt.Errorf("poll: notification policy: %w", err)
	}
	if len(data) > maxPolicyFile {
		return def, &SpecError{Source: path, Err: fmt.Errorf("file larger than %d bytes", maxPolicyFile)}
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		l, _, _ = strings.Cut(l, "#")
		lines[i] = strings.TrimSpace(l)
	}
	return parsePolicy(path, strings.Join(lines, ";"), def)
}

func parsePolicy(source, spec string, def Policy) (Policy, error) {
	if def == nil {
		panic("poll: nil default Policy")
	}
	var ps policySpec
	for _, term := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ';' }) {
		if term = strings.TrimSpace(term); term == "" {
			continue
		}
		if err := ps.add(term); err != nil {
			return def, &SpecError{Source: source, Spec: spec, Term: term, Err: err}
		}
	}
	if ps.alone != nil && ps.terms > 1 {
		return def, &SpecError{Source: source, Spec: spec, Term: ps.aloneTerm, Err: errors.New("must stand alone")}
	}
	return ps.policy(def), nil
}

// policySpec collects the terms of a policy text.
type policySpec struct {
	alone           Policy // always or never
	aloneTerm       string
	useDef          bool
	patterns        []string
	after, every    time.Duration
	hasAfter, hasEv bool
	terms           int
}

// add reads one term, not empty and trimmed.
func (ps *policySpec) add(term string) error {
	ps.terms++
	key, val, hasVal := strings.Cut(term, "=")
	key = strings.ToLower(strings.TrimSpace(key))
	val = strings.TrimSpace(val)
	if !hasVal {
		return ps.addKeyword(key, term)
	}
	if val == "" {
		return errors.New("empty value")
	}
	switch key {
	case "after":
		return setDuration(&ps.after, &ps.hasAfter, "after=", val, false)
	case "every":
		return setDuration(&ps.every, &ps.hasEv, "every=", val, true)
	case "purpose":
		return ps.addPatterns(val)
	}
	return fmt.Errorf("unknown key %q (want after, purpose or every)", key)
}

func (ps *policySpec) addKeyword(key, term string) error {
	switch key {
	case "never", "off", "false", "0":
		ps.alone, ps.aloneTerm = Never(), term
	case "always", "on", "true", "1":
		ps.alone, ps.aloneTerm = Always(), term
	case "default":
		ps.useDef = true
	default:
		return errors.New("unknown keyword (want never, always, default, after=, purpose= or every=)")
	}
	return nil
}

// setDuration sets *d from val, once; positive says whether 0 is refused.
func setDuration(d *time.Duration, set *bool, key, val string, positive bool) error {
	v, err := time.ParseDuration(val)
	switch {
	case err != nil:
		return err
	case *set:
		return errors.New(key + " given twice")
	case positive && v <= 0:
		return errors.New("duration must be more than 0")
	case v < 0:
		return errors.New("negative duration")
	}
	*d, *set = v, true
	return nil
}

func (ps *policySpec) addPatterns(val string) error {
	for pat := range strings.SplitSeq(val, "|") {
		pat = strings.TrimSpace(pat)
		if pat == "" {
			return errors.New("empty purpose pattern")
		}
		if i := strings.IndexByte(pat, '*'); i >= 0 && i != len(pat)-1 {
			return fmt.Errorf("pattern %q: '*' is allowed only at the end", pat)
		}
		ps.patterns = append(ps.patterns, pat)
	}
	return nil
}

// policy returns the policy the terms describe: All(purposes, after,
// default, every), the rate limit last so that it counts only events
// that are really notified.
func (ps *policySpec) policy(def Policy) Policy {
	if ps.alone != nil {
		return ps.alone
	}
	var all []Policy
	if ps.patterns != nil {
		all = append(all, Purposes(ps.patterns...))
	}
	if ps.hasAfter {
		all = append(all, After(ps.after))
	}
	if ps.useDef {
		all = append(all, def)
	}
	if ps.hasEv {
		all = append(all, RateLimit(ps.every))
	}
	switch len(all) {
	case 0:
		return def
	case 1:
		return all[0]
	}
	return All(all...)
}
