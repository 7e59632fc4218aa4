package bench

import (
	"context"
	"testing"

	"github.com/amicopier/amicopier/internal/cloud"
)

// TestEventScenario: the event's bound, by hand, and a run of it through
// the Lambda handler that makes exactly those calls and lists no
// organisation (its wall time is the benchmark's to judge, not a test's).
func TestEventScenario(t *testing.T) {
	sc := EventScenario()
	sc.Latency = 0
	w, err := buildEvent(sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.named) != eventNamed || len(w.team) != eventTeam {
		t.Fatalf("%d named accounts and %d in the OU", len(w.named), len(w.team))
	}
	b, _ := w.expect()
	// 1 source describe; 5 DescribeAccount + the OU's two listings +
	// DescribeOrganization; 25 AssumeRole; 25 target describes; 3 reads,
	// 1 ModifyImageAttribute, 2 ModifySnapshotAttribute; 25 CopyImage.
	if b.SourceDescribes != 1 || b.OrganizationList != 8 || b.AssumeRole != 25 || b.TargetDescribes != 25 || b.Sharing != 6 || b.CopyImage != 25 || b.Total != 90 {
		t.Fatalf("bound %+v", b)
	}
	res, err := RunEvent(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if res.APICalls.Total != int64(b.Total) || res.APICalls.ByOperation[cloud.OpListAccounts] != 0 || res.CopiesStarted != 25 || res.StaleGrantsAfter != 0 {
		t.Fatalf("result %+v", res)
	}
	if res.SecondsToLastCopy <= 0 || res.SecondsToLastCopy > res.WallSeconds {
		t.Errorf("seconds_to_last_copy %.3f, wall %.3f", res.SecondsToLastCopy, res.WallSeconds)
	}
}
