package reconcile_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/config"
	"github.com/amicopier/amicopier/internal/sim"
	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// checkWorld is two target accounts with healthy keys (the member
// StackSet's: Auto Scaling may use them) in both Regions, and one source
// in eu-west-1 targeted at both.
func checkWorld(t *testing.T) (*world, cloud.Image) {
	t.Helper()
	w := newWorld(t, 2)
	for _, a := range accounts(2) {
		for _, r := range []string{euWest, usEast} {
			w.cloud.AllowAutoScaling(w.key(a, r), true)
		}
	}
	img := w.image(euWest, "web", 1, accountID(1)+","+accountID(2))
	return w, img
}

// key is the ARN of alias/amicopier of account in region.
func (w *world) key(account, region string) string {
	w.t.Helper()
	k, ok := w.cloud.ResolveKey(account, region, "alias/amicopier")
	if !ok {
		w.t.Fatalf("no alias/amicopier in %s/%s", account, region)
	}
	return k.ARN
}

func (w *world) check() *report.CheckReport {
	w.t.Helper()
	rep, err := w.engine().Check(context.Background(), reconcile.CheckRequest{Trigger: "test"})
	if err != nil {
		w.t.Fatalf("check: %v", err)
	}
	return rep
}

func kindsOf(fs []report.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Kind)+"@"+f.Account+"/"+f.Region)
	}
	return out
}

// TestCheckFindsEachProblem breaks one thing per case in account 2 and
// wants exactly the finding for it, with a fix, from a check that makes no
// mutating call (the simulator counts every call; CopyImage dry runs are
// counted apart and change nothing).
func TestCheckFindsEachProblem(t *testing.T) {
	a2 := accountID(2)
	for _, tc := range []struct {
		name   string
		break_ func(w *world, img cloud.Image)
		want   []string // kind@account/region
	}{
		{"healthy", func(*world, cloud.Image) {}, nil},
		{"role cannot be assumed", func(w *world, _ cloud.Image) { w.cloud.DenyAssumeRole(a2) },
			[]string{"role_not_assumable@" + a2 + "/"}},
		{"key does not exist in the Region", func(w *world, _ cloud.Image) {
			w.cfg.Encryption.Overrides = []config.KeyOverride{{Account: a2, KMSKey: "alias/amicopier-typo"}}
		}, []string{"key_not_found@" + a2 + "/" + euWest}},
		{"key ARN of another Region", func(w *world, _ cloud.Image) {
			w.cfg.Encryption.Overrides = []config.KeyOverride{{Account: a2, KMSKey: w.key(a2, usEast)}}
		}, []string{"key_not_found@" + a2 + "/" + euWest}},
		{"key disabled", func(w *world, _ cloud.Image) { w.cloud.SetKeyEnabled(w.key(a2, euWest), false) },
			[]string{"key_disabled@" + a2 + "/" + euWest}},
		{"key pending deletion", func(w *world, _ cloud.Image) {
			w.cloud.SetKeyState(w.key(a2, euWest), cloud.KeyPendingDeletion)
		}, []string{"key_pending_deletion@" + a2 + "/" + euWest}},
		{"key in another state", func(w *world, _ cloud.Image) {
			w.cloud.SetKeyState(w.key(a2, euWest), cloud.KeyPendingImport)
		}, []string{"key_unavailable@" + a2 + "/" + euWest}},
		{"key not symmetric", func(w *world, _ cloud.Image) {
			w.cloud.SetKeySpec(w.key(a2, euWest), "RSA_2048", "SIGN_VERIFY")
		}, []string{"key_not_symmetric@" + a2 + "/" + euWest}},
		{"role may not use the key", func(w *world, _ cloud.Image) {
			w.cloud.DenyCopierActions(a2, "kms:GenerateDataKeyWithoutPlaintext")
		}, []string{"key_use_denied@" + a2 + "/" + euWest}},
		{"role may not describe the key", func(w *world, _ cloud.Image) {
			w.cloud.DenyCopierActions(a2, "kms:DescribeKey")
		}, []string{"key_use_denied@" + a2 + "/" + euWest}},
		{"source snapshot key not usable by the account", func(w *world, img cloud.Image) {
			// Re-make the source with its snapshot under a key of the
			// source account shared with account 1 only.
			k := w.cloud.AddKey(srcAccount, euWest, "golden")
			w.cloud.AllowKeyUse(k, accountID(1))
			w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{
				Name: "db", Tags: map[string]string{targetTag: accountID(1) + "," + a2, "Recipe": "db"},
				Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: k}},
			})
		}, []string{"source_key_unusable@" + a2 + "/" + euWest}},
		{"source snapshot key disabled", func(w *world, img cloud.Image) {
			k := w.cloud.AddKey(srcAccount, euWest, "golden")
			w.cloud.AllowKeyUseByOrganization(k)
			w.cloud.AddImage(srcAccount, euWest, sim.ImageSpec{
				Name: "db", Tags: map[string]string{targetTag: a2, "Recipe": "db"},
				Devices: []sim.DeviceSpec{{Size: 8, KMSKeyARN: k}},
			})
			w.cloud.SetKeyEnabled(k, false)
		}, []string{"source_key_unusable@" + a2 + "/" + euWest}},
		{"Auto Scaling may not use the key", func(w *world, _ cloud.Image) {
			w.cloud.AllowAutoScaling(w.key(a2, euWest), false)
		}, []string{"auto_scaling_grant_missing@" + a2 + "/" + euWest}},
		{"CopyImage not allowed", func(w *world, _ cloud.Image) { w.cloud.DenyCopierActions(a2, "ec2:CopyImage") },
			[]string{"copy_not_authorized@" + a2 + "/" + euWest}},
		{"CreateTags on copy not allowed", func(w *world, _ cloud.Image) { w.cloud.DenyCopierActions(a2, "ec2:CreateTags") },
			[]string{"copy_not_authorized@" + a2 + "/" + euWest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, img := checkWorld(t)
			tc.break_(w, img)
			w.cloud.ResetCounters()
			rep := w.check()
			if got := kindsOf(rep.Findings); !slices.Equal(got, tc.want) {
				t.Fatalf("findings %v, want %v\nnotes: %v", got, tc.want, rep.Notes)
			}
			for _, f := range rep.Findings {
				if f.Problem == "" || f.Fix == "" || f.Pairs == 0 || len(f.SourceImages) == 0 {
					t.Errorf("finding %+v lacks its problem, fix, pairs or sources", f)
				}
				if rep.Counts[f.Kind] != 1 {
					t.Errorf("count of %s = %d", f.Kind, rep.Counts[f.Kind])
				}
			}
			if rep.Status != report.StatusSucceeded || len(rep.Notes) != 0 {
				t.Errorf("status %s, notes %v: every check could be made", rep.Status, rep.Notes)
			}
			// Read-only: no mutating call reached the simulator, and the
			// dry runs were counted apart.
			if n := w.cloud.MutatingCalls(); n != 0 || rep.MutatingCalls != 0 {
				t.Fatalf("%d mutating calls (report: %d): %v", n, rep.MutatingCalls, w.cloud.CallCounts())
			}
			if n := w.cloud.Calls(cloud.OpCopyImage, "", ""); n != 0 {
				t.Fatalf("%d real CopyImage calls", n)
			}
			if tc.name != "role cannot be assumed" && w.cloud.Calls(cloud.OpCopyImageDryRun, a2, euWest) != 1 {
				t.Errorf("dry runs in %s/%s: %d, want 1 (%v)", a2, euWest, w.cloud.Calls(cloud.OpCopyImageDryRun, a2, euWest), w.cloud.CallCounts())
			}
			if rep.DryRuns != w.cloud.Calls(cloud.OpCopyImageDryRun, "", "") {
				t.Errorf("report counts %d dry runs, the simulator %d", rep.DryRuns, w.cloud.Calls(cloud.OpCopyImageDryRun, "", ""))
			}
			for _, a := range accounts(2) {
				if imgs := w.cloud.Images(a, euWest); len(imgs) != 0 {
					t.Fatalf("the check left images in %s: %v", a, imgs)
				}
			}
			if p := w.cloud.LaunchPermissions(srcAccount, euWest, img.ID); len(p) != 0 {
				t.Fatalf("the check shared %s with %v", img.ID, p)
			}
			if n := w.store.Writes(); n != (state.WriteCounts{}) {
				t.Fatalf("the check wrote state items: %+v", n)
			}
		})
	}
}

// TestCheckAutoScalingByGrant accepts a grant to the Auto Scaling role in
// place of the key policy statements (the documented way for a key of
// another account).
func TestCheckAutoScalingByGrant(t *testing.T) {
	w, _ := checkWorld(t)
	a2 := accountID(2)
	key := w.key(a2, euWest)
	w.cloud.AllowAutoScaling(key, false)
	slr := sim.AutoScalingRoleARN(a2, sim.AutoScalingRoleName)
	w.cloud.AddKeyGrant(key, slr, "Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo")
	if got := kindsOf(w.check().Findings); !slices.Equal(got, []string{"auto_scaling_grant_missing@" + a2 + "/" + euWest}) {
		t.Fatalf("a grant without CreateGrant: findings %v", got)
	}
	w.cloud.AddKeyGrant(key, slr, "CreateGrant")
	if got := kindsOf(w.check().Findings); len(got) != 0 {
		t.Fatalf("a complete grant: findings %v", got)
	}
	// Turned off, the check does not look.
	w.cfg.Check.AutoScalingRole = ""
	w.cloud.AddKeyGrant(key, "arn:aws:iam::"+a2+":role/other") // nothing for Auto Scaling
	rep := w.check()
	if len(rep.Findings) != 0 || !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "auto_scaling_role") }) {
		t.Fatalf("with the check off: findings %v, notes %v", kindsOf(rep.Findings), rep.Notes)
	}
}

// TestCheckNotesWhatItCannotCheck: a failure that is not the problem
// looked for (throttling that outlasts the retries) is a note, and the
// check is partial, not a finding.
func TestCheckNotesWhatItCannotCheck(t *testing.T) {
	w, _ := checkWorld(t)
	w.cloud.SetFault(sim.NewFaultPlan(1).Add(sim.FaultRule{Op: cloud.OpDescribeKey, Account: accountID(2), Code: "ThrottlingException"}).Hook())
	rep := w.check()
	if len(rep.Findings) != 0 || rep.Status != report.StatusPartial || len(rep.Notes) == 0 {
		t.Fatalf("findings %v, status %s, notes %v", kindsOf(rep.Findings), rep.Status, rep.Notes)
	}
}

// TestPlanShowsKMSProblems: plan marks the pairs a key problem would fail,
// and only those.
func TestPlanShowsKMSProblems(t *testing.T) {
	w, img := checkWorld(t)
	a2 := accountID(2)
	w.cloud.SetKeyEnabled(w.key(a2, euWest), false)
	w.cloud.AllowAutoScaling(w.key(accountID(1), euWest), false) // not a copy problem
	res := w.run(reconcile.ModePlan)
	for _, it := range res.Report.Items {
		if it.SourceImage != img.ID {
			continue
		}
		broken := it.Account == a2
		if broken != (it.KMSProblem != "") || broken != strings.HasPrefix(it.Reason, "kms_problem: ") {
			t.Errorf("%s/%s: kms_problem %q, reason %q", it.Account, it.Region, it.KMSProblem, it.Reason)
		}
		if broken && !strings.Contains(it.KMSProblem, "disabled") {
			t.Errorf("kms_problem %q does not say the key is disabled", it.KMSProblem)
		}
	}
	if res.Summary.MutatingCalls != 0 || res.Summary.APICalls[cloud.OpGetKeyPolicy] != 0 {
		t.Errorf("plan's key checks: %v", res.Summary.APICalls)
	}
	// Turned off, plan makes no key call.
	w.cfg.Check.InPlan = false
	res = w.run(reconcile.ModePlan)
	if n := res.Summary.APICalls[cloud.OpDescribeKey]; n != 0 {
		t.Errorf("plan without check.in_plan described %d keys", n)
	}
}
