package lambdafn

import (
	"encoding/json"
	"io"
	"time"

	"github.com/amicopier/amicopier/reconcile"
	"github.com/amicopier/amicopier/reconcile/report"
)

// MetricsNamespace is the CloudWatch namespace of the run metrics.
const MetricsNamespace = "amicopier"

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// WriteMetrics prints one CloudWatch Embedded Metric Format line for a
// run: copies started and failed, drift per category (Drift.<category>,
// and Drift in total), pairs, duration, API calls (all, mutating,
// throttled) and errors, with the trigger as the dimension and the run id
// and status as properties. CloudWatch Logs turns the line into metrics
// of namespace "amicopier".
func WriteMetrics(w io.Writer, res *reconcile.Result, now time.Time) error {
	sum := res.Summary
	values := map[string]float64{
		"CopiesStarted":  float64(sum.Actions["copy"]),
		"CopiesFailed":   float64(sum.Actions["copy_failed"]),
		"CopiesDeferred": float64(sum.Actions["deferred"]),
		"Pairs":          float64(res.Report.Pairs),
		"Drift":          float64(res.Report.Drift()),
		"Errors":         float64(sum.ErrorCount),
		"MutatingCalls":  float64(sum.MutatingCalls),
		"ThrottledCalls": float64(sum.ThrottledCalls),
	}
	var calls int64
	for _, n := range sum.APICalls {
		calls += n
	}
	values["ApiCalls"] = float64(calls)
	metrics := []emfMetric{
		{"CopiesStarted", "Count"}, {"CopiesFailed", "Count"}, {"CopiesDeferred", "Count"},
		{"Pairs", "Count"}, {"Drift", "Count"}, {"Errors", "Count"},
		{"ApiCalls", "Count"}, {"MutatingCalls", "Count"}, {"ThrottledCalls", "Count"},
		{"DurationSeconds", "Seconds"},
	}
	for _, c := range report.Categories {
		name := "Drift." + string(c)
		if c == report.OK {
			name = "Pairs.ok"
		}
		values[name] = float64(res.Report.Counts[c])
		metrics = append(metrics, emfMetric{name, "Count"})
	}
	return writeEMF(w, now, metrics, values, map[string]any{
		"Trigger":         sum.Trigger,
		"RunId":           sum.RunID,
		"Mode":            sum.Mode,
		"Status":          sum.Status,
		"DurationSeconds": sum.DurationSeconds,
	})
}

// writeEMF prints one EMF line: the metrics' values under namespace
// amicopier with the dimension Trigger, which props must hold.
func writeEMF(w io.Writer, now time.Time, metrics []emfMetric, values map[string]float64, props map[string]any) error {
	line := map[string]any{
		"_aws": emfMeta{
			Timestamp: now.UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace: MetricsNamespace, Dimensions: [][]string{{"Trigger"}}, Metrics: metrics,
			}},
		},
	}
	for k, v := range props {
		line[k] = v
	}
	for k, v := range values {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// CheckMetric is the name of the check's total finding count; a metric
// per kind is CheckMetric + "." + kind.
const CheckMetric = "CheckFindings"

// WriteCheckMetrics prints one Embedded Metric Format line for a
// preflight check: its findings in all (CheckFindings) and per kind
// (CheckFindings.<kind>), the checks it could not make (CheckNotes), the
// accounts and Regions checked, API calls (all, mutating, CopyImage dry
// runs) and its duration, with the trigger ("check") as the dimension.
func WriteCheckMetrics(w io.Writer, rep *report.CheckReport, now time.Time) error {
	values := map[string]float64{
		CheckMetric:       float64(len(rep.Findings)),
		"CheckNotes":      float64(len(rep.Notes)),
		"CheckTargets":    float64(rep.Targets),
		"CheckAccounts":   float64(rep.Accounts),
		"CheckDryRuns":    float64(rep.DryRuns),
		"MutatingCalls":   float64(rep.MutatingCalls),
		"DurationSeconds": rep.DurationSeconds,
	}
	var calls int64
	for _, n := range rep.APICalls {
		calls += n
	}
	values["ApiCalls"] = float64(calls)
	metrics := []emfMetric{
		{CheckMetric, "Count"}, {"CheckNotes", "Count"}, {"CheckTargets", "Count"}, {"CheckAccounts", "Count"},
		{"CheckDryRuns", "Count"}, {"ApiCalls", "Count"}, {"MutatingCalls", "Count"}, {"DurationSeconds", "Seconds"},
	}
	for _, k := range report.FindingKinds {
		name := CheckMetric + "." + string(k)
		values[name] = float64(rep.Counts[k])
		metrics = append(metrics, emfMetric{name, "Count"})
	}
	return writeEMF(w, now, metrics, values, map[string]any{
		"Trigger": rep.Trigger,
		"RunId":   rep.RunID,
		"Status":  rep.Status,
	})
}
