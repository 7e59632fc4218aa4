package config

import "github.com/amicopier/amicopier/internal/pacing"

// PaceRates sizes the connectors' client-side buckets from limits.*_rate
// and limits.*_burst, where they are set; pacing.DefaultRates elsewhere.
func (l Limits) PaceRates() pacing.Rates {
	r := pacing.DefaultRates
	if l.DescribeRate > 0 && l.DescribeBurst > 0 {
		r.Describe = pacing.Bucket{PerSecond: l.DescribeRate, Burst: l.DescribeBurst}
	}
	if l.MutatingRate > 0 && l.MutatingBurst > 0 {
		r.Mutating = pacing.Bucket{PerSecond: l.MutatingRate, Burst: l.MutatingBurst}
	}
	if l.AssumeRoleRate > 0 {
		r.AssumeRole = pacing.Bucket{PerSecond: l.AssumeRoleRate, Burst: max(1, int(l.AssumeRoleRate))}
	}
	if l.ParameterReadRate > 0 {
		r.ParameterRead = pacing.Bucket{PerSecond: l.ParameterReadRate, Burst: max(1, int(l.ParameterReadRate))}
	}
	if l.ParameterWriteRate > 0 {
		r.ParameterWrite = pacing.Bucket{PerSecond: l.ParameterWriteRate, Burst: max(1, int(l.ParameterWriteRate))}
	}
	return r
}
