package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/pause"
	"github.com/amicopier/amicopier/reconcile/report"
	"github.com/amicopier/amicopier/state"
)

// Publishing (publish.ssm): in every target account and Region, an SSM
// parameter per group of sources (the sources whose tags render the same
// parameter name) names the newest available copy of the group, newest by
// the source's creation date. The run reads the parameters with the
// observation (GetParameters, ten names a call), plans each with the pure
// PlanParameter, and writes (PutParameter) only what changes, after the
// copies. A parameter is never pointed at a copy that is not good (pending,
// failed, unencrypted, under another key), never moved back to an older
// build, and never overwritten when amicopier did not create it, unless
// publish.ssm.overwrite_foreign says so.
//
// Ownership is recorded on the parameter itself, as the tags
// amicopier:managed=true and amicopier:source-account=<source account>
// given when amicopier creates it: they live with the parameter (a state
// store could lose them, and another deployment of amicopier could not see
// them), they show in the console and the CLI, only ssm:AddTagsToResource
// can forge them, and a second deployment of amicopier (another source
// account) tells its parameters from this one's. Tags are read
// (ListTagsForResource) only for a parameter that exists and would
// change, so a run in which no parameter changes reads none.

// PublishSettings say how copies are published in Parameter Store.
type PublishSettings struct {
	// ParameterName renders a source's parameter name from a
	// ParameterNameData; nil publishes nothing.
	ParameterName *template.Template
	// DataType is cloud.DataTypeEC2Image or cloud.DataTypeText.
	DataType string
	// OverwriteForeign lets run overwrite parameters amicopier did not
	// create, and tag them as its own.
	OverwriteForeign bool
	// VerifyFor is how long a run waits, at most, for SSM to show the
	// aws:ec2:image values it wrote (SSM validates them after
	// PutParameter answered); 0 reads them back once.
	VerifyFor time.Duration
}

// ParameterNameData is what the parameter name template sees: the source
// AMI's name, id, Region and tags.
type ParameterNameData = cloud.ParameterNameData

// ParameterCandidate is a copy a parameter may name: the newest good copy
// of its group in the account and Region.
type ParameterCandidate struct {
	CopyID, Source string
	// SourceName is the source's name, for the reasons.
	SourceName string
	// Created is the source's creation date.
	Created time.Time
}

// ParameterValue is what the run could tell of the image a parameter
// names.
type ParameterValue struct {
	// Copy: the value is a copy (it carries CopiedFromAMI) in the
	// account and Region, of Source; Usable says it is good, State what
	// it is if not.
	Copy       bool
	Source     string
	SourceName string
	Usable     bool
	State      string
	// Dated: the source's creation date is known (Created), and InGroup
	// says whether it renders this parameter's name; Gone: the source no
	// longer exists in the source account.
	Dated   bool
	Created time.Time
	InGroup bool
	Gone    bool
}

// ParameterOwner is what a parameter's tags say of who made it.
type ParameterOwner struct {
	// Managed: amicopier of this source account created it.
	Managed bool
	// Other names another source account whose amicopier created it.
	Other string
}

// ParameterFacts is everything known about one parameter.
type ParameterFacts struct {
	Name string
	// Best is the newest good copy of the group; nil while there is
	// none, and NoneWhy says why.
	Best    *ParameterCandidate
	NoneWhy string
	// Current is the parameter, nil when it does not exist; Value
	// describes what it names.
	Current *cloud.Parameter
	Value   ParameterValue
	// DataType is the configured one.
	DataType string
	// Owner is nil while the parameter's tags are not known.
	Owner            *ParameterOwner
	OverwriteForeign bool
	// Narrowed: the run sees only some sources (--only-ami, an event
	// about one image), so the group's newest build may be one it did not
	// discover: it writes nothing, and the next full run does.
	Narrowed bool
}

// ParameterDecision is what to do about a parameter.
type ParameterDecision struct {
	State  report.ParameterState
	Reason string
	// Write: put Best's copy id; Create: the parameter does not exist;
	// TakeOver: tag it as amicopier's after writing.
	Write, Create, TakeOver bool
	// NeedsOwner: the parameter is in drift and its tags must be read
	// (Owner is nil): they decide whether run may change it, and whether
	// it is reported foreign.
	NeedsOwner bool
}

// Action names the decision's action for the report.
func (d ParameterDecision) Action() string {
	switch {
	case d.Write && d.Create:
		return "create"
	case d.Write && d.TakeOver:
		return "take_over"
	case d.Write:
		return "update"
	}
	return "none"
}

// named is an AMI id with its name, for the reasons.
func named(id, name string) string {
	if name == "" {
		return id
	}
	return id + " (" + name + ")"
}

// newerBuild reports whether build (created, id) is newer than other: by
// creation date, then id, so the order is total.
func newerBuild(created time.Time, id string, otherCreated time.Time, otherID string) bool {
	if c := created.Compare(otherCreated); c != 0 {
		return c > 0
	}
	return id > otherID
}

// dataTypeOf reads an empty data type as text, as SSM reports it.
func dataTypeOf(p *cloud.Parameter) string { return cmp.Or(p.DataType, cloud.DataTypeText) }

// PlanParameter decides about one parameter. It is pure: the same facts
// give the same decision.
func PlanParameter(f ParameterFacts) ParameterDecision {
	d := planParameter(f)
	if d.Write && f.Narrowed {
		d.Write, d.Create, d.TakeOver = false, false, false
		d.Reason += "; not written by a run narrowed to some source AMIs, which may not see the group's newest build: the next full run writes it"
	}
	return d
}

func planParameter(f ParameterFacts) ParameterDecision {
	best, cur, v := f.Best, f.Current, f.Value
	if cur == nil {
		if best == nil {
			return ParameterDecision{State: report.ParamWaiting, Reason: "no parameter, and no available copy to name yet: " + f.NoneWhy}
		}
		return ParameterDecision{State: report.ParamMissing, Write: true, Create: true,
			Reason: fmt.Sprintf("no parameter; it will name %s, the copy of %s", best.CopyID, named(best.Source, best.SourceName))}
	}
	if best != nil && (cur.Value == best.CopyID || (v.Copy && v.Usable && v.Source == best.Source)) {
		return ParameterDecision{State: report.ParamOK,
			Reason: fmt.Sprintf("names %s, a copy of %s, the newest build with an available copy", cur.Value, named(best.Source, best.SourceName))}
	}
	var state report.ParameterState
	var reason string
	switch {
	case v.Copy && v.Dated && v.InGroup:
		switch {
		case best != nil && newerBuild(v.Created, v.Source, best.Created, best.Source):
			what := ""
			if !v.Usable && v.State != "" {
				what = " (that copy is " + v.State + ")"
			}
			return ParameterDecision{State: report.ParamAhead, Reason: fmt.Sprintf(
				"names %s, a copy of %s%s, a newer build than %s (the newest with an available copy); a parameter is never moved back to an older build",
				cur.Value, named(v.Source, v.SourceName), what, named(best.Source, best.SourceName))}
		case best != nil && v.Source == best.Source:
			state, reason = report.ParamElsewhere, fmt.Sprintf("names %s, a copy of the newest build %s that is %s", cur.Value, named(v.Source, v.SourceName), cmp.Or(v.State, "not usable"))
		default:
			state, reason = report.ParamStale, fmt.Sprintf("names %s, a copy of the older build %s", cur.Value, named(v.Source, v.SourceName))
		}
	case v.Copy && v.Dated:
		state, reason = report.ParamElsewhere, fmt.Sprintf("names %s, a copy of %s, which is published as another parameter", cur.Value, named(v.Source, v.SourceName))
	case v.Copy && v.Gone:
		state, reason = report.ParamElsewhere, fmt.Sprintf("names %s, a copy of %s, which no longer exists in the source account (a withdrawn build)", cur.Value, v.Source)
	case v.Copy:
		return ParameterDecision{State: report.ParamAhead, Reason: fmt.Sprintf(
			"names %s, a copy of %s, whose build could not be dated; it is not moved", cur.Value, named(v.Source, v.SourceName))}
	default:
		state, reason = report.ParamElsewhere, fmt.Sprintf("names %s, which is no copy of a source in this account and Region (another image, or one that no longer exists)", cur.Value)
	}
	// A parameter in drift: who made it decides whether run may change it,
	// and reports it foreign either way.
	var next string // what it would name
	if best == nil {
		next = "no available copy to name instead yet: " + f.NoneWhy
	} else {
		next = fmt.Sprintf("the newest available copy is %s, of %s", best.CopyID, named(best.Source, best.SourceName))
		if cur.Type != cloud.ParameterTypeString || (dataTypeOf(cur) != f.DataType && (dataTypeOf(cur) == cloud.DataTypeEC2Image || f.DataType == cloud.DataTypeEC2Image)) {
			return ParameterDecision{State: report.ParamConflict, Reason: fmt.Sprintf(
				"%s; %s, but it is a %s parameter of data type %s, and SSM cannot change it to a String of data type %s: delete it (run then creates it), or set publish.ssm.data_type to its data type",
				reason, next, cur.Type, dataTypeOf(cur), f.DataType)}
		}
	}
	switch o := f.Owner; {
	case o == nil:
		return ParameterDecision{State: state, Reason: reason + "; " + next, NeedsOwner: true}
	case o.Managed && best != nil:
		return ParameterDecision{State: state, Reason: fmt.Sprintf("%s; it will name %s, the copy of %s", reason, best.CopyID, named(best.Source, best.SourceName)), Write: true}
	case o.Managed:
		return ParameterDecision{State: state, Reason: reason + "; " + next}
	case f.OverwriteForeign:
		return ParameterDecision{State: state, Write: best != nil, TakeOver: best != nil,
			Reason: reason + "; " + next + "; amicopier did not create it, and takes it over (publish.ssm.overwrite_foreign)"}
	}
	by := "amicopier did not create it"
	if f.Owner.Other != "" {
		by = "amicopier of source account " + f.Owner.Other + " created it"
	}
	return ParameterDecision{State: report.ParamForeign, Reason: fmt.Sprintf(
		"%s; %s; but %s, so it is left as it is (publish.ssm.overwrite_foreign lets amicopier take it over)", reason, next, by)}
}

// ownerOf reads a parameter's tags.
func ownerOf(tags map[string]string, source string) ParameterOwner {
	if tags[TagManaged] != "true" {
		return ParameterOwner{}
	}
	if by := tags[TagSourceAccount]; by != source {
		return ParameterOwner{Other: cmp.Or(by, "unknown")}
	}
	return ParameterOwner{Managed: true}
}

// paramRun is one run's parameter work. Observation fills it from many
// goroutines (its lock), planParameters and applyParameters work on it
// alone.
type paramRun struct {
	set PublishSettings

	mu      sync.Mutex
	names   map[string]string // source id -> parameter name, "" when it has none
	regions []*paramRegion
	// lookups are the sources of copies parameters name that discovery
	// did not find, with the Region their copy says they are in ("" when
	// it does not say).
	lookups map[string]string
	// items are the report's lines of the parameters (ok ones only when
	// the report lists them), counts every parameter by state.
	items  []report.Parameter
	counts map[report.ParameterState]int
}

// paramRegion is the parameters of one account and Region.
type paramRegion struct {
	account, region string
	store           cloud.ParameterStore
	err             error
	params          []*paramWork
}

// paramWork is one parameter.
type paramWork struct {
	facts ParameterFacts
	dec   ParameterDecision
	item  int // index in the report's parameters, -1 when only counted
	// newer are the group's sources newer than the best copy's, when the
	// parameter names an image that is no listed copy: the state records
	// tell whether it was their copy.
	newer []*sourceImage
	// version and written are the outcome of the run's write; shown says
	// SSM shows the written value.
	version        int64
	written, shown bool
}

func newParamRun(set PublishSettings) *paramRun {
	if set.ParameterName == nil {
		return nil
	}
	return &paramRun{set: set, names: map[string]string{}, lookups: map[string]string{}}
}

// renderName renders the parameter name of an image, checked against
// SSM's rules.
func (p *paramRun) renderName(img *cloud.Image) (string, error) {
	var b strings.Builder
	if err := p.set.ParameterName.Execute(&b, ParameterNameData{Name: img.Name, ID: img.ID, Region: img.Region, Tags: img.Tags}); err != nil {
		return "", err
	}
	name := b.String()
	if err := cloud.CheckParameterName(name); err != nil {
		return "", fmt.Errorf("renders to %q, which SSM does not accept: %w", name, err)
	}
	return name, nil
}

// parameterName returns the parameter name of a source, rendering it once per
// run; a source whose name cannot be rendered (a tag it lacks, a value SSM
// refuses) is reported once and publishes nothing.
func (r *run) parameterName(src *sourceImage) string {
	p := r.params
	p.mu.Lock()
	name, done := p.names[src.img.ID]
	p.mu.Unlock()
	if done {
		return name
	}
	name, err := p.renderName(&src.img)
	p.mu.Lock()
	_, again := p.names[src.img.ID]
	p.names[src.img.ID] = name
	p.mu.Unlock()
	if err != nil && !again {
		r.fail(fmt.Sprintf("publish.ssm.name_template for source %s (%s), whose copies are published in no parameter", src.img.ID, src.img.Name), err)
	}
	return name
}

// bestCopy returns the newest good copy of a group among copies (by
// source), or why there is none.
func bestCopy(group []*sourceImage, bySource map[string][]*cloud.Image, wantKey string) (*ParameterCandidate, string) {
	ordered := slices.Clone(group)
	slices.SortFunc(ordered, func(a, b *sourceImage) int {
		if newerBuild(a.img.CreationDate, a.img.ID, b.img.CreationDate, b.img.ID) {
			return -1
		}
		return 1
	})
	for _, src := range ordered {
		var good []cloud.Image
		for _, c := range bySource[src.img.ID] {
			if cls, _ := classifyCopy(c, wantKey); cls == copyGood {
				good = append(good, *c)
			}
		}
		if len(good) > 0 {
			slices.SortFunc(good, compareCopies)
			return &ParameterCandidate{CopyID: good[0].ID, Source: src.img.ID, SourceName: src.img.Name, Created: src.img.CreationDate}, ""
		}
	}
	newest := ordered[0]
	copies := bySource[newest.img.ID]
	if len(copies) == 0 {
		return nil, fmt.Sprintf("the newest build %s has no copy here yet", named(newest.img.ID, newest.img.Name))
	}
	var states []string
	for _, c := range copies {
		cls, detail := classifyCopy(c, wantKey)
		what := string(c.State)
		switch cls {
		case copyUnencrypted:
			what = "unencrypted"
		case copyWrongKey:
			what = "under another key than configured"
		case copyPending:
			what = "pending"
		}
		if detail != "" && cls != copyPending {
			what += " (" + detail + ")"
		}
		states = append(states, c.ID+" "+what)
	}
	return nil, fmt.Sprintf("the copy of the newest build %s is %s", named(newest.img.ID, newest.img.Name), strings.Join(states, ", "))
}

// observeParameters reads the parameters of one account and Region, where
// the run observed copies, and gathers the facts of each. Called by
// observeRegion with the sources that target the Region and every copy
// found there.
func (r *run) observeParameters(ctx context.Context, account, region string, srcs []*sourceImage, copies []cloud.Image) {
	p := r.params
	if p == nil || len(srcs) == 0 {
		return
	}
	groups := map[string][]*sourceImage{}
	for _, src := range srcs {
		if name := r.parameterName(src); name != "" {
			groups[name] = append(groups[name], src)
		}
	}
	if len(groups) == 0 {
		return
	}
	byImage := make(map[string]*cloud.Image, len(copies))
	bySource := map[string][]*cloud.Image{}
	for i := range copies {
		c := &copies[i]
		byImage[c.ID] = c
		from := c.Tags[TagCopiedFrom]
		bySource[from] = append(bySource[from], c)
	}
	pr := &paramRegion{account: account, region: region}
	names := sortedKeys(groups)
	current := map[string]cloud.Parameter{}
	if pc, ok := r.conn.(cloud.ParameterConnector); !ok {
		pr.err = errors.New("this connection has no Systems Manager client")
	} else if pr.store, pr.err = pc.TargetParameters(ctx, account, region); pr.err == nil {
		for batch := range slices.Chunk(names, cloud.MaxGetParameters) {
			got, err := pr.store.GetParameters(ctx, batch)
			if err != nil {
				pr.err = err
				break
			}
			for k, v := range got {
				current[k] = v
			}
		}
	}
	wantKey := r.e.set.Keys.For(account, region)
	for _, name := range names {
		f := ParameterFacts{Name: name, DataType: p.set.DataType, OverwriteForeign: p.set.OverwriteForeign, Narrowed: len(r.req.OnlyImages) > 0}
		f.Best, f.NoneWhy = bestCopy(groups[name], bySource, wantKey)
		pw := &paramWork{facts: f, item: -1}
		if cur, ok := current[name]; ok {
			pw.facts.Current = &cur
			pw.facts.Value = r.describeValue(cur.Value, name, byImage, wantKey)
			if !pw.facts.Value.Copy {
				for _, src := range groups[name] {
					if b := pw.facts.Best; b == nil || newerBuild(src.img.CreationDate, src.img.ID, b.Created, b.Source) || src.img.ID == b.Source {
						pw.newer = append(pw.newer, src)
					}
				}
			}
		}
		pr.params = append(pr.params, pw)
	}
	p.mu.Lock()
	p.regions = append(p.regions, pr)
	p.mu.Unlock()
}

// describeValue tells what image value is: a copy in the account and
// Region or not, whether it is good, and the build of its source when
// discovery found the source (the others are looked up later).
func (r *run) describeValue(value, name string, byImage map[string]*cloud.Image, wantKey string) ParameterValue {
	c := byImage[value]
	if c == nil {
		return ParameterValue{}
	}
	v := ParameterValue{Copy: true, Source: c.Tags[TagCopiedFrom]}
	cls, detail := classifyCopy(c, wantKey)
	v.Usable = cls == copyGood
	if !v.Usable {
		v.State = cmp.Or(detail, string(c.State))
		if cls == copyUnencrypted {
			v.State = "unencrypted: " + detail
		}
	}
	if src := r.found.byID[v.Source]; src != nil {
		v.Dated, v.Created, v.InGroup, v.SourceName = true, src.img.CreationDate, r.parameterName(src) == name, src.img.Name
		return v
	}
	r.params.mu.Lock()
	if _, ok := r.params.lookups[v.Source]; !ok || r.params.lookups[v.Source] == "" {
		r.params.lookups[v.Source] = c.Tags[TagSourceRegion]
	}
	r.params.mu.Unlock()
	return v
}

// datedSource is a source a parameter's copy came from, looked up in the
// source account.
type datedSource struct {
	created   time.Time
	name      string // its parameter name, "" when it has none
	imageName string
}

// lookupSources finds, in the source account, the sources of copies that
// parameters name and that discovery did not find (deprecated, disabled
// or filtered out; or outside --only-ami): their creation dates date the
// builds. Sources not found no longer exist; a lookup that failed leaves
// its sources undated.
func (r *run) lookupSources(ctx context.Context) (found map[string]datedSource, gone map[string]bool) {
	p := r.params
	found, gone = map[string]datedSource{}, map[string]bool{}
	byRegion := map[string][]string{}
	for id, region := range p.lookups {
		if !cloud.IsImageID(id) {
			gone[id] = true // a CopiedFromAMI tag that names no image
			continue
		}
		if region != "" && slices.Contains(r.e.set.SourceRegions, region) {
			byRegion[region] = append(byRegion[region], id)
			continue
		}
		for _, reg := range r.e.set.SourceRegions {
			byRegion[reg] = append(byRegion[reg], id)
		}
	}
	failed := map[string]bool{}
	for _, region := range sortedKeys(byRegion) {
		ids := byRegion[region]
		slices.Sort(ids)
		client, err := r.sourceClient(ctx, region)
		for batch := range slices.Chunk(ids, 100) {
			var imgs []cloud.Image
			if err == nil {
				imgs, err = client.DescribeImages(ctx, cloud.ImageQuery{ImageIDs: batch})
			}
			if err != nil {
				r.fail(fmt.Sprintf("publish.ssm: date the builds of %s in source account %s %s (those parameters are left alone)",
					strings.Join(batch, ", "), r.e.set.SourceAccount, region), err)
				for _, id := range batch {
					failed[id] = true
				}
				continue
			}
			for i := range imgs {
				img := &imgs[i]
				if img.State == cloud.ImageDeregistered {
					continue
				}
				name, _ := p.renderName(img)
				found[img.ID] = datedSource{created: img.CreationDate, name: name, imageName: img.Name}
			}
		}
	}
	for id := range p.lookups {
		if _, ok := found[id]; !ok && !failed[id] {
			gone[id] = true
		}
	}
	return found, gone
}

// planParameters dates the builds parameters name, reads the tags of the
// parameters that would change, decides each, and lists them in the
// report.
func (r *run) planParameters(ctx context.Context) {
	p := r.params
	if p == nil {
		return
	}
	found, gone := r.lookupSources(ctx)
	slices.SortFunc(p.regions, func(a, b *paramRegion) int {
		return cmp.Or(strings.Compare(a.account, b.account), strings.Compare(a.region, b.region))
	})
	parallel(ctx, len(p.regions), r.e.set.Concurrency, func(ctx context.Context, i int) {
		pr := p.regions[i]
		if pr.err != nil {
			return
		}
		for _, pw := range pr.params {
			f := &pw.facts
			if len(pw.newer) > 0 {
				r.recordedCopy(ctx, pr, pw)
			}
			if v := &f.Value; v.Copy && !v.Dated {
				if d, ok := found[v.Source]; ok {
					v.Dated, v.Created, v.InGroup, v.SourceName = true, d.created, d.name == f.Name, d.imageName
				} else if gone[v.Source] {
					v.Gone = true
				}
			}
			pw.dec = PlanParameter(*f)
			if !pw.dec.NeedsOwner {
				continue
			}
			tags, err := pr.store.ParameterTags(ctx, f.Name)
			if err != nil {
				pw.dec.Reason += fmt.Sprintf("; its tags could not be read (%v), so amicopier does not know who made it and leaves it alone", err)
				pw.dec.NeedsOwner = false
				r.fail(fmt.Sprintf("publish.ssm: read the tags of parameter %s in %s/%s", f.Name, pr.account, pr.region), err)
				continue
			}
			o := ownerOf(tags, r.e.set.SourceAccount)
			f.Owner = &o
			pw.dec = PlanParameter(*f)
		}
	})
	counts := map[report.ParameterState]int{}
	for _, pr := range p.regions {
		name := r.accountName(pr.account)
		if pr.err != nil {
			r.fail(fmt.Sprintf("publish.ssm: read the parameters of account %s in %s", pr.account, pr.region), pr.err)
		}
		for _, pw := range pr.params {
			f := &pw.facts
			it := report.Parameter{Account: pr.account, AccountName: name, Region: pr.region, Name: f.Name,
				State: pw.dec.State, Reason: pw.dec.Reason, Action: pw.dec.Action()}
			if pr.err != nil {
				it.State, it.Action = report.ParamUnreachable, "none"
				it.Reason = fmt.Sprintf("the parameters of account %s in %s cannot be read: %v; check the copier role's ssm:GetParameters permission on the parameter path", pr.account, pr.region, pr.err)
				pw.dec = ParameterDecision{State: report.ParamUnreachable}
			}
			if f.Best != nil {
				it.Want, it.WantSource = f.Best.CopyID, f.Best.Source
			}
			if f.Current != nil {
				it.Value, it.Version = f.Current.Value, f.Current.Version
				it.ValueSource = f.Value.Source
			}
			if f.Owner != nil {
				it.Managed = f.Owner.Managed
			}
			counts[it.State]++
			if it.State == report.ParamOK && !r.req.IncludeOK && !r.req.AllParameters {
				continue
			}
			pw.item = len(p.items)
			p.items = append(p.items, it)
		}
	}
	p.counts = counts
}

// reportParameters puts the run's parameters in its report.
func (r *run) reportParameters(rep *report.Report) {
	p := r.params
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rep.Parameters, rep.ParameterCounts = slices.Clone(p.items), p.counts
}

// recordedCopy tells, from the state records, whether the image a
// parameter names (no copy EC2 lists any more) was the copy of one of the
// group's sources at least as new as the best copy's: a copy that was
// deregistered, of a newer build, which the parameter must not be moved
// back from. The pair's settled record keeps the id of its copy.
func (r *run) recordedCopy(ctx context.Context, pr *paramRegion, pw *paramWork) {
	f := &pw.facts
	for _, src := range pw.newer {
		rec, ok, err := r.e.store.GetPair(ctx, state.PairKey{SourceImage: src.img.ID, Account: pr.account, Region: pr.region})
		if err != nil || !ok || rec.CopyImageID != f.Current.Value {
			continue
		}
		f.Value = ParameterValue{Copy: true, Source: src.img.ID, SourceName: src.img.Name, State: "no longer there (deregistered)",
			Dated: true, Created: src.img.CreationDate, InGroup: true}
		return
	}
}

// parameterWrites reports whether the plan writes a parameter.
func (p *paramRun) parameterWrites() bool {
	if p == nil {
		return false
	}
	for _, pr := range p.regions {
		for _, pw := range pr.params {
			if pw.dec.Write {
				return true
			}
		}
	}
	return false
}

// parameterTags are the tags amicopier gives the parameters it creates.
func (r *run) parameterTags() map[string]string {
	return map[string]string{TagManaged: "true", TagSourceAccount: r.e.set.SourceAccount}
}

// applyParameters makes the writes the plan decided, Region by Region (a
// bounded number at a time), then waits for SSM to show the aws:ec2:image
// values it wrote.
func (r *run) applyParameters(ctx context.Context) {
	p := r.params
	if !p.parameterWrites() {
		return
	}
	var todo []*paramRegion
	for _, pr := range p.regions {
		if slices.ContainsFunc(pr.params, func(pw *paramWork) bool { return pw.dec.Write }) {
			todo = append(todo, pr)
		}
	}
	parallel(ctx, len(todo), r.e.set.Concurrency, func(ctx context.Context, i int) {
		pr := todo[i]
		for _, pw := range pr.params {
			if pw.dec.Write {
				r.writeParameter(ctx, pr, pw)
			}
		}
	})
	r.verifyParameters(ctx, todo)
}

// writeParameter makes one parameter name its group's newest available
// copy.
func (r *run) writeParameter(ctx context.Context, pr *paramRegion, pw *paramWork) {
	f := &pw.facts
	if r.outOfTime() || ctx.Err() != nil {
		r.count("parameter_deferred", 1)
		r.updateParameter(pw, func(it *report.Parameter) {
			it.Action = "deferred"
			it.Reason += "; deferred: the time budget is spent, the next run continues"
		})
		return
	}
	in := cloud.PutParameterInput{
		Name: f.Name, Value: f.Best.CopyID, DataType: r.params.set.DataType, Overwrite: !pw.dec.Create,
		Description: fmt.Sprintf("Encrypted copy of %s: the newest available build, published by amicopier", f.Best.Source),
	}
	if pw.dec.Create {
		in.Tags = r.parameterTags()
	}
	version, err := pr.store.PutParameter(ctx, in)
	if err == nil && pw.dec.TakeOver {
		if terr := pr.store.TagParameter(ctx, f.Name, r.parameterTags()); terr != nil {
			r.fail(fmt.Sprintf("publish.ssm: parameter %s in %s/%s was written but not tagged as amicopier's (the next run finds it foreign again)", f.Name, pr.account, pr.region), terr)
		}
	}
	if err != nil {
		r.count("parameter_failed", 1)
		r.fail(fmt.Sprintf("publish.ssm: write parameter %s in %s/%s", f.Name, pr.account, pr.region), err)
		r.updateParameter(pw, func(it *report.Parameter) { it.Action, it.Error = "failed", err.Error() })
		return
	}
	pw.version, pw.written = version, true
	action := map[string]string{"create": "created", "update": "updated", "take_over": "taken_over"}[pw.dec.Action()]
	r.count("parameter_"+action, 1)
	r.updateParameter(pw, func(it *report.Parameter) {
		it.Action, it.Version = action, version
		if r.params.set.DataType != cloud.DataTypeEC2Image {
			it.Value = f.Best.CopyID
		}
	})
}

func (r *run) updateParameter(pw *paramWork, f func(*report.Parameter)) {
	if pw.item < 0 {
		return
	}
	r.params.mu.Lock()
	f(&r.params.items[pw.item])
	r.params.mu.Unlock()
}

// verifyParameters reads back the aws:ec2:image values the run wrote: SSM
// validates them after PutParameter answered, and a value that fails the
// validation never shows ("the parameter will not be created or updated",
// PutParameter, AWS Systems Manager API Reference). It reads until every
// value shows or publish.ssm.verify_timeout (real time) has passed;
// values still not shown are reported pending, and the next run, which
// reads the parameter again, writes them again if they never showed.
func (r *run) verifyParameters(ctx context.Context, regions []*paramRegion) {
	if r.params.set.DataType != cloud.DataTypeEC2Image {
		return
	}
	deadline := time.Now().Add(r.params.set.VerifyFor)
	wait := 250 * time.Millisecond
	for {
		left := 0
		for _, pr := range regions {
			var names []string
			want := map[string]*paramWork{}
			for _, pw := range pr.params {
				if pw.written && !pw.shown {
					names = append(names, pw.facts.Name)
					want[pw.facts.Name] = pw
				}
			}
			for batch := range slices.Chunk(names, cloud.MaxGetParameters) {
				got, err := pr.store.GetParameters(ctx, batch)
				if err != nil {
					r.fail(fmt.Sprintf("publish.ssm: read back parameters in %s/%s", pr.account, pr.region), err)
					continue
				}
				for _, name := range batch {
					pw := want[name]
					if g, ok := got[name]; ok && g.Value == pw.facts.Best.CopyID && g.Version >= pw.version {
						pw.shown = true
						r.updateParameter(pw, func(it *report.Parameter) {
							it.Validation, it.Value, it.Version = report.ValidationDone, g.Value, g.Version
						})
					}
				}
			}
			for _, pw := range pr.params {
				if pw.written && !pw.shown {
					left++
				}
			}
		}
		if left == 0 || !time.Now().Add(wait).Before(deadline) || r.outOfTime() || pause.For(ctx, wait) != nil {
			break
		}
		wait = min(2*wait, 2*time.Second)
	}
	for _, pr := range regions {
		for _, pw := range pr.params {
			if pw.written && !pw.shown {
				r.count("parameter_validation_pending", 1)
				r.updateParameter(pw, func(it *report.Parameter) { it.Validation = report.ValidationPending })
			}
		}
	}
}
