package reconcile_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/state"
)

// FuzzNoShareOutsideTheOrganization feeds arbitrary target metadata (an
// AMI tag, a config rule's account list, an event's target list) through
// the whole engine and checks that a dry run changes nothing and that
// nothing is ever shared with or copied into an account that is not an
// ACTIVE, non-excluded member.
func FuzzNoShareOutsideTheOrganization(f *testing.F) {
	seeds := [][3]string{
		{"*", "", ""},
		{"200000000001 999999999999", "300000000001", ""},
		{"ou-sim0-00000001", "", "300000000001,999999999999"},
		{"r-sim0", "*", ""},
		{"200000000002,200000000003;200000000099", "", "ou-sim0-00000002"},
		{"<script>alert(1)</script> 2000000000011", "20000000000", "\x00\xff"},
		{"ou-sim0-00000002 ou-nope-12345678", "", "*"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	allowed := map[string]bool{"200000000001": true, "200000000002": true}
	f.Fuzz(func(t *testing.T, tag, ruleAccounts, event string) {
		c := sim.New()
		ou := c.AddOU("", "Workloads")  // ou-sim0-00000001
		off := c.AddOU("", "Suspended") // ou-sim0-00000002
		for _, a := range []struct {
			id, parent string
			state      cloud.AccountState
		}{
			{srcAccount, "", cloud.AccountActive},
			{"200000000001", ou, cloud.AccountActive},
			{"200000000002", ou, cloud.AccountActive},
			{"200000000003", ou, cloud.AccountActive}, // excluded below
			{"300000000001", off, cloud.AccountSuspended},
			{"300000000002", off, cloud.AccountClosed},
		} {
			if err := c.AddAccount(a.id, a.id, a.parent, a.state); err != nil {
				t.Fatal(err)
			}
		}
		img := c.AddImage(srcAccount, euWest, sim.ImageSpec{Name: "web", Tags: map[string]string{targetTag: tag, "Recipe": "web"}})
		cfg := config.Default()
		cfg.Source.AccountID = srcAccount
		cfg.Source.Regions = []string{euWest}
		cfg.Targets.ExcludeAccounts = []string{"200000000003"}
		cfg.State.Backend = config.BackendMemory
		refs, _ := cloud.ParseTargetList(ruleAccounts, "rule")
		rule := config.Rule{Name: "fuzz", Match: map[string]string{"Recipe": "web"}}
		for _, r := range refs {
			switch r.Kind {
			case cloud.TargetAccount:
				rule.Accounts = append(rule.Accounts, r.ID)
			case cloud.TargetOrganization:
				rule.Accounts = append(rule.Accounts, "*")
			case cloud.TargetOU:
				rule.OUs = append(rule.OUs, r.ID)
			}
		}
		if len(rule.Accounts)+len(rule.OUs) > 0 {
			cfg.Targets.Rules = []config.Rule{rule}
		}
		extra, _ := cloud.ParseTargetList(event, "event")
		e, err := reconcile.New(reconcile.Options{
			Settings: settingsOf(t, cfg),
			Connect:  func(context.Context, string) (cloud.Connector, error) { return c.Connector(srcAccount), nil },
			Store:    state.NewMemory(state.WithClock(c.Now)),
			Clock:    c,
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		// A dry run of whatever the metadata says changes nothing.
		if _, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModePlan, ExtraTargets: extra}); err != nil {
			t.Fatal(err)
		}
		if n := c.MutatingCalls(); n != 0 {
			t.Fatalf("plan made %d mutating calls (tag %q, rule %q, event %q)", n, tag, ruleAccounts, event)
		}
		if _, err := e.Run(context.Background(), reconcile.Request{Mode: reconcile.ModeRun, ExtraTargets: extra}); err != nil {
			t.Fatal(err)
		}
		for _, a := range c.LaunchPermissions(srcAccount, euWest, img.ID) {
			if !allowed[a] {
				t.Fatalf("shared with %s (tag %q, rule %q, event %q)", a, tag, ruleAccounts, event)
			}
		}
		for _, s := range img.SnapshotIDs() {
			for _, a := range c.SnapshotPermissions(srcAccount, euWest, s) {
				if !allowed[a] {
					t.Fatalf("snapshot shared with %s", a)
				}
			}
		}
		for _, a := range []string{"200000000003", "300000000001", "300000000002", "999999999999"} {
			if n := c.Calls("CopyImage", a, ""); n != 0 {
				t.Fatalf("CopyImage in %s", a)
			}
		}
	})
}
