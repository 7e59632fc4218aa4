package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
)

// The preflight check (amicopier check) finds, per target account and
// Region, what would make copies fail hours later: a copier role that
// cannot be assumed, a key that is missing, disabled, pending deletion,
// not symmetric or not usable by the role, a source snapshot key the
// account may not use, a key Auto Scaling may not use, and a CopyImage
// IAM would refuse. It is read-only: DescribeImages and DescribeSnapshots
// in the source account, Organizations listings, AssumeRole, DescribeKey,
// GetKeyPolicy, ListGrants, and two kinds of dry run that change nothing
// (GenerateDataKeyWithoutPlaintext and CopyImage with DryRun).

// CheckSettings tune the preflight check.
type CheckSettings struct {
	// AutoScalingRole is the name of the Auto Scaling service-linked role
	// in each target account whose use of the key is checked; "" skips
	// that check.
	AutoScalingRole string
	// SkipCopyDryRun leaves out the CopyImage dry runs.
	SkipCopyDryRun bool
	// InPlan makes plan check the keys of the pairs that copy and mark
	// those a problem would fail (kms_problem).
	InPlan bool
}

// CheckRequest says what one check covers.
type CheckRequest struct {
	// Trigger names what started it ("cli", "check" under Lambda).
	Trigger string
	// RunID names the AWS sessions; generated when empty.
	RunID string
	// OnlyImages and OnlyAccounts narrow the check, Shard restricts it to
	// one shard of the accounts.
	OnlyImages   []string
	OnlyAccounts []string
	Shard        Shard
	// Deadline stops the check from starting more accounts (the Lambda
	// deadline); zero: none.
	Deadline time.Time
}

// checker is one check's (or one plan's key checks') work and findings.
type checker struct {
	r *run
	// source keys of each source image, by image id (customer or AWS
	// managed key ARNs of its encrypted snapshots).
	srcKeys map[string][]string

	mu       sync.Mutex
	findings []report.Finding
	notes    []string
	partial  bool
	// keyMemo holds each account and Region's verdict on its configured
	// key, and each account's on each source key, so plan asks once.
	keyMemo map[string][]report.Finding
	// copyOnly limits the key checks to what makes a copy fail (plan's):
	// Auto Scaling's use of the key does not.
	copyOnly bool
}

func (c *checker) add(f report.Finding) {
	c.mu.Lock()
	c.findings = append(c.findings, f)
	c.mu.Unlock()
}

// note records a check that could not be made; it makes the check
// partial.
func (c *checker) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	c.notes = append(c.notes, msg)
	c.partial = true
	c.mu.Unlock()
	c.r.e.log.Warn(msg, "run_id", c.r.id)
}

// Check runs the preflight check. It returns an error only when it could
// not check at all (no source listing, no organisation); what it could
// not check in one account is a note of the report, which is then
// partial.
func (e *Engine) Check(ctx context.Context, req CheckRequest) (*report.CheckReport, error) {
	r, err := e.newRun(Request{Mode: ModePlan, Trigger: req.Trigger, OnlyImages: req.OnlyImages, OnlyAccounts: req.OnlyAccounts,
		Shard: req.Shard, RunID: req.RunID})
	if err != nil {
		return nil, err
	}
	started := r.started
	conn, err := e.connect(ctx, r.id)
	if err != nil {
		return nil, errorf(err, "connect to AWS")
	}
	r.conn = conn
	if err := r.discover(ctx); err != nil {
		return nil, err
	}
	c := &checker{r: r}
	c.learnSourceKeys(ctx, r.found.sources)

	rep := report.NewCheckReport(r.id, req.Trigger, e.set.SourceAccount, e.set.SourceRegions, e.clock.Now())
	rep.Scope = report.Scope{Images: slices.Clone(req.OnlyImages), Accounts: slices.Clone(req.OnlyAccounts), Shard: req.Shard.String()}
	groups := r.targetGroups()
	set := map[string]bool{}
	for _, g := range groups {
		for _, a := range g.accounts {
			set[a] = true
		}
	}
	accounts := sortedKeys(set)
	var checked []report.CheckedTarget
	var mu sync.Mutex
	e.progress.Phase("check", len(accounts))
	parallel(ctx, len(accounts), e.set.Concurrency, func(ctx context.Context, i int) {
		defer e.progress.Step(1)
		if !req.Deadline.IsZero() && time.Now().After(req.Deadline) {
			c.note("account %s not checked: the check's time ran out", accounts[i])
			return
		}
		targets := c.checkAccount(ctx, accounts[i], r.sourcesOf(groups.imagesOf(accounts[i])))
		mu.Lock()
		checked = append(checked, targets...)
		mu.Unlock()
	})
	if ctx.Err() != nil {
		c.note("check interrupted: %v", context.Cause(ctx))
	}
	for _, t := range checked {
		rep.Pairs += t.Pairs
	}
	rep.Accounts, rep.Targets, rep.Checked = len(accounts), len(checked), checked
	rep.Findings = append(rep.Findings, c.findings...)
	rep.Notes = append(rep.Notes, c.notes...)
	if e.set.Check.AutoScalingRole == "" {
		rep.Notes = append(rep.Notes, "the Auto Scaling service-linked role's use of the keys was not checked (check.auto_scaling_role is empty)")
	}
	if e.set.Check.SkipCopyDryRun {
		rep.Notes = append(rep.Notes, "no CopyImage dry run was made (check.copy_dry_run is false)")
	}
	r.out.mu.Lock()
	partial := r.out.partial
	r.out.mu.Unlock()
	if c.partial || partial {
		rep.Status = report.StatusPartial
	}
	errs, _ := r.out.errorList()
	rep.Notes = append(rep.Notes, errs...)
	if cc, ok := conn.(cloud.CallCounter); ok {
		rep.APICalls = cc.CallCounts()
	}
	for op, n := range rep.APICalls {
		if cloud.IsMutating(op) {
			rep.MutatingCalls += n
		}
	}
	rep.DryRuns = rep.APICalls[cloud.OpCopyImageDryRun]
	rep.DurationSeconds = time.Since(started).Seconds()
	rep.Sort()
	e.log.Info("check finished", "run_id", r.id, "findings", len(rep.Findings), "status", rep.Status)
	return rep, nil
}

// sourcesOf returns the sources at the given indexes.
func (r *run) sourcesOf(idx []int32) []*sourceImage {
	out := make([]*sourceImage, len(idx))
	for i, j := range idx {
		out[i] = r.found.sources[j]
	}
	return out
}

// learnSourceKeys reads which KMS keys encrypt the snapshots of srcs, in
// the source account (DescribeSnapshots; DescribeImages does not tell).
func (c *checker) learnSourceKeys(ctx context.Context, srcs []*sourceImage) {
	c.srcKeys = map[string][]string{}
	byRegion := map[string][]string{}
	for _, src := range srcs {
		for _, bd := range src.img.BlockDevices {
			if bd.Encrypted && bd.SnapshotID != "" {
				byRegion[src.img.Region] = append(byRegion[src.img.Region], bd.SnapshotID)
			}
		}
	}
	keys := map[string]string{}
	for _, region := range sortedKeys(byRegion) {
		client, err := c.r.sourceClient(ctx, region)
		if err == nil {
			var got map[string]string
			if got, err = client.SnapshotKeys(ctx, byRegion[region]); err == nil {
				for k, v := range got {
					keys[k] = v
				}
				continue
			}
		}
		c.note("the keys of the source snapshots in %s could not be read (DescribeSnapshots in source account %s), so whether the targets may use them was not checked: %v",
			region, c.r.e.set.SourceAccount, err)
	}
	for _, src := range srcs {
		var ks []string
		for _, bd := range src.img.BlockDevices {
			if k, ok := keys[bd.SnapshotID]; ok && !slices.Contains(ks, k) {
				ks = append(ks, k)
			}
		}
		if len(ks) > 0 {
			c.srcKeys[src.img.ID] = ks
		}
	}
}

// checkAccount checks one account in every Region its sources target and
// returns what it checked.
func (c *checker) checkAccount(ctx context.Context, account string, srcs []*sourceImage) []report.CheckedTarget {
	r := c.r
	byRegion := map[string][]*sourceImage{}
	for _, src := range srcs {
		for _, region := range src.targets.Regions {
			byRegion[region] = append(byRegion[region], src)
		}
	}
	regions := sortedKeys(byRegion)
	name := r.accountName(account)
	var out []report.CheckedTarget
	for _, region := range regions {
		out = append(out, report.CheckedTarget{Account: account, AccountName: name, Region: region, Key: r.e.set.Keys.For(account, region), Pairs: len(byRegion[region])})
	}
	if len(regions) == 0 {
		return nil
	}
	// The first Target call assumes the role.
	if _, err := r.conn.Target(ctx, account, regions[0]); err != nil {
		if cloud.ClassOf(err) != cloud.ClassAccessDenied {
			c.note("account %s not checked: %v", account, err)
			return out
		}
		c.add(report.Finding{
			Kind: report.RoleNotAssumable, Account: account, AccountName: name, Pairs: countPairs(byRegion),
			SourceImages: imageIDsOf(srcs), Problem: fmt.Sprintf("the copier role of account %s cannot be assumed, so nothing can be observed or copied there", account),
			Fix: "deploy the member StackSet to the account (it creates the copier role), and check that targets.role_name or targets.role_arn_template names it " +
				"and that its trust policy allows the central role with targets.external_id",
			Error: err.Error(),
		})
		return out
	}
	for _, region := range regions {
		here := byRegion[region]
		for _, f := range c.keyFindings(ctx, account, region) {
			f.Pairs, f.SourceImages = len(here), imageIDsOf(here)
			c.add(f)
		}
		c.dryRunCopy(ctx, account, region, here)
	}
	for _, f := range c.sourceKeyFindings(ctx, account, srcs) {
		c.add(f)
	}
	return out
}

func countPairs(byRegion map[string][]*sourceImage) int {
	n := 0
	for _, s := range byRegion {
		n += len(s)
	}
	return n
}

func imageIDsOf(srcs []*sourceImage) []string {
	out := make([]string, len(srcs))
	for i, s := range srcs {
		out[i] = s.img.ID
	}
	slices.Sort(out)
	return out
}

// keys returns the account's key inspector in region, or nil (with a note
// once) when the connector has none.
func (c *checker) keys(ctx context.Context, account, region string) (cloud.KeyInspector, error) {
	kc, ok := c.r.conn.(cloud.KeyConnector)
	if !ok {
		return nil, fmt.Errorf("this connection has no KMS client")
	}
	return kc.TargetKeys(ctx, account, region)
}

// keyFindings checks the key configured for copies in account and region,
// once per check (plan asks for every pair).
func (c *checker) keyFindings(ctx context.Context, account, region string) []report.Finding {
	key := c.r.e.set.Keys.For(account, region)
	if key == "" {
		return nil // the account's default EBS key
	}
	memo := "key\x00" + account + "\x00" + region
	c.mu.Lock()
	if fs, ok := c.keyMemo[memo]; ok {
		c.mu.Unlock()
		return fs
	}
	c.mu.Unlock()
	fs := c.checkKey(ctx, account, region, key)
	c.mu.Lock()
	if c.keyMemo == nil {
		c.keyMemo = map[string][]report.Finding{}
	}
	c.keyMemo[memo] = fs
	c.mu.Unlock()
	return fs
}

func (c *checker) checkKey(ctx context.Context, account, region, key string) []report.Finding {
	name := c.r.accountName(account)
	finding := func(kind report.FindingKind, problem, fix string, err error) report.Finding {
		f := report.Finding{Kind: kind, Account: account, AccountName: name, Region: region, Key: key, Problem: problem, Fix: fix}
		if err != nil {
			f.Error = err.Error()
		}
		return f
	}
	where := fmt.Sprintf("in account %s Region %s", account, region)
	fixKey := "create the key and its alias there (the member StackSet does, in every Region it is deployed to), or correct encryption.kms_key or its override for " + account + "/" + region
	if kr := cloud.KeyRegion(key); kr != "" && kr != region {
		return []report.Finding{finding(report.KeyNotFound,
			fmt.Sprintf("key %s is in Region %s, but CopyImage needs a key in the copy's Region %s", key, kr, region),
			"name a key of "+region+" for copies there: an alias name (alias/...) resolves in every Region, or add an encryption.overrides entry for "+region, nil)}
	}
	ki, err := c.keys(ctx, account, region)
	if err != nil {
		c.note("key %s %s not checked: %v", key, where, err)
		return nil
	}
	info, err := ki.DescribeKey(ctx, key)
	switch cloud.ClassOf(err) {
	case cloud.ClassUnknown:
		if err != nil {
			c.note("key %s %s not checked: %v", key, where, err)
			return nil
		}
	case cloud.ClassNotFound:
		return []report.Finding{finding(report.KeyNotFound, fmt.Sprintf("key %s does not exist %s", key, where), fixKey, err)}
	case cloud.ClassAccessDenied:
		return []report.Finding{finding(report.KeyUseDenied,
			fmt.Sprintf("the copier role cannot describe key %s %s, so it cannot use it", key, where),
			"allow the copier role kms:DescribeKey, kms:Decrypt, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt* and kms:CreateGrant (for AWS resources) on the key, in the key policy and in the role's policy (the member StackSet grants both)", err)}
	default:
		c.note("key %s %s not checked: %v", key, where, err)
		return nil
	}
	var out []report.Finding
	switch info.State {
	case cloud.KeyEnabled:
	case cloud.KeyDisabled:
		out = append(out, finding(report.KeyDisabled, fmt.Sprintf("key %s (%s) %s is disabled: every copy made with it fails", key, info.ARN, where),
			"enable the key (aws kms enable-key --key-id "+info.ARN+"), then run again: failed copies are retried", nil))
	case cloud.KeyPendingDeletion:
		when := "soon"
		if !info.DeletionDate.IsZero() {
			when = "on " + info.DeletionDate.UTC().Format(time.RFC3339)
		}
		out = append(out, finding(report.KeyPendingDeletion, fmt.Sprintf("key %s (%s) %s is scheduled for deletion %s: copies fail now, and the copies already made with it become unusable once it is deleted", key, info.ARN, where, when),
			"cancel the deletion (aws kms cancel-key-deletion --key-id "+info.ARN+") and enable the key, or point encryption.kms_key at another key", nil))
	default:
		out = append(out, finding(report.KeyUnavailable, fmt.Sprintf("key %s (%s) %s is %s and cannot encrypt", key, info.ARN, where, info.State),
			"bring the key back to Enabled (import its key material, reconnect its custom key store, or wait for the multi-Region operation to finish), or use another key", nil))
	}
	if !info.Symmetric() {
		out = append(out, finding(report.KeyNotSymmetric, fmt.Sprintf("key %s (%s) %s is a %s key for %s; EBS encrypts only with symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)", key, info.ARN, where, info.Spec, info.Usage),
			"configure a symmetric encryption key for copies there (the member StackSet's key is one)", nil))
	}
	if info.State == cloud.KeyEnabled && info.Symmetric() {
		err := ki.DryRunDataKey(ctx, info.ARN)
		switch {
		case err == nil:
		case cloud.ClassOf(err) == cloud.ClassAccessDenied:
			out = append(out, finding(report.KeyUseDenied, fmt.Sprintf("the copier role may not use key %s (%s) %s: a dry run of GenerateDataKeyWithoutPlaintext was refused, so copies would fail", key, info.ARN, where),
				"allow the copier role kms:Decrypt, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt*, kms:DescribeKey and kms:CreateGrant (for AWS resources) on the key, in the key policy and in the role's policy (the member StackSet grants both)", err))
		default:
			c.note("whether the copier role may use key %s %s is unknown: %v", info.ARN, where, err)
		}
	}
	if c.copyOnly {
		return out
	}
	if f, ok := c.autoScaling(ctx, ki, info, account, region, key); ok {
		out = append(out, f)
	}
	return out
}

// autoScaling checks that the Auto Scaling service-linked role may use a
// customer managed key: by its policy (a key of the account) or by grants
// (any key; a key of another account can only be granted so).
func (c *checker) autoScaling(ctx context.Context, ki cloud.KeyInspector, info cloud.KeyInfo, account, region, key string) (report.Finding, bool) {
	role := c.r.e.set.Check.AutoScalingRole
	if role == "" || info.Manager == cloud.KeyManagerAWS {
		return report.Finding{}, false // AWS managed keys need no authorisation
	}
	slr := autoScalingRoleARN(info.ARN, account, role)
	known := false
	var missing []string
	if info.Account == account {
		doc, err := ki.KeyPolicy(ctx, info.ARN)
		if err == nil {
			missing, err = policyAllows(doc, slr, account, autoScalingKeyActions)
		}
		if err != nil {
			c.note("the key policy of %s in account %s Region %s could not be read, so the Auto Scaling check relies on grants: %v", info.ARN, account, region, err)
		} else {
			known = true
			if len(missing) == 0 {
				return report.Finding{}, false
			}
		}
	}
	grants, err := ki.KeyGrants(ctx, info.ARN, slr)
	if err != nil {
		if !known {
			c.note("whether Auto Scaling may use key %s in account %s Region %s is unknown (neither its policy nor its grants could be read): %v", info.ARN, account, region, err)
			return report.Finding{}, false
		}
	} else if grantsCover(grants) {
		return report.Finding{}, false
	}
	problem := fmt.Sprintf("neither the policy nor a grant of key %s (%s) lets the Auto Scaling service-linked role %s use it", key, info.ARN, slr)
	if len(missing) > 0 && len(missing) < len(autoScalingKeyActions) {
		problem += " (the policy lacks " + strings.Join(missing, ", ") + ")"
	}
	fix := "add the two key policy statements of the Auto Scaling User Guide (\"Required AWS KMS key policy for use with encrypted volumes\") for " + slr +
		" (the member StackSet's key has them)"
	if info.Account != account {
		fix = "the key belongs to account " + info.Account + ": let account " + account + " use it in the key policy, then create a grant for " + slr +
			" from account " + account + " (aws kms create-grant --grantee-principal " + slr + " --operations " + strings.Join(autoScalingGrantOps(), " ") + ")"
	}
	return report.Finding{
		Kind: report.AutoScalingGrantMissing, Account: account, AccountName: c.r.accountName(account), Region: region, Key: key,
		Problem: problem + ": Auto Scaling groups cannot launch instances from the copies", Fix: fix,
	}, true
}

// sourceKeyFindings checks that account may use the customer managed keys
// of its sources' snapshots: CopyImage decrypts them as the copier role.
func (c *checker) sourceKeyFindings(ctx context.Context, account string, srcs []*sourceImage) []report.Finding {
	bySourceKey := map[string][]*sourceImage{}
	for _, src := range srcs {
		for _, k := range c.srcKeys[src.img.ID] {
			bySourceKey[k] = append(bySourceKey[k], src)
		}
	}
	var out []report.Finding
	for _, keyARN := range sortedKeys(bySourceKey) {
		users := bySourceKey[keyARN]
		memo := "src\x00" + account + "\x00" + keyARN
		c.mu.Lock()
		fs, done := c.keyMemo[memo]
		c.mu.Unlock()
		if !done {
			fs = c.checkSourceKey(ctx, account, keyARN)
			c.mu.Lock()
			if c.keyMemo == nil {
				c.keyMemo = map[string][]report.Finding{}
			}
			c.keyMemo[memo] = fs
			c.mu.Unlock()
		}
		for _, f := range fs {
			f.SourceImages = imageIDsOf(users)
			for _, s := range users {
				f.Pairs += len(s.targets.Regions)
			}
			out = append(out, f)
		}
	}
	return out
}

func (c *checker) checkSourceKey(ctx context.Context, account, keyARN string) []report.Finding {
	region := cloud.KeyRegion(keyARN)
	src := c.r.e.set.SourceAccount
	mk := func(problem, fix string, err error) []report.Finding {
		f := report.Finding{Kind: report.SourceKeyUnusable, Account: account, AccountName: c.r.accountName(account), Region: region, Key: keyARN, Problem: problem, Fix: fix}
		if err != nil {
			f.Error = err.Error()
		}
		return []report.Finding{f}
	}
	fixPolicy := fmt.Sprintf("let account %s use the key in its key policy in account %s (kms:Decrypt, kms:DescribeKey, kms:ReEncrypt*, kms:CreateGrant for AWS resources), and the copier role in its policy (member StackSet parameter SourceKmsKeyArns)", account, src)
	ki, err := c.keys(ctx, account, region)
	if err != nil {
		c.note("source key %s not checked for account %s: %v", keyARN, account, err)
		return nil
	}
	info, err := ki.DescribeKey(ctx, keyARN)
	switch cloud.ClassOf(err) {
	case cloud.ClassUnknown:
		if err != nil {
			c.note("source key %s not checked for account %s: %v", keyARN, account, err)
			return nil
		}
	case cloud.ClassAccessDenied, cloud.ClassNotFound:
		return mk(fmt.Sprintf("account %s cannot use key %s that encrypts source snapshots: DescribeKey from its copier role fails, so every copy of those sources fails", account, keyARN), fixPolicy, err)
	default:
		c.note("source key %s not checked for account %s: %v", keyARN, account, err)
		return nil
	}
	switch {
	case info.Manager == cloud.KeyManagerAWS:
		return mk(fmt.Sprintf("source snapshots are encrypted with the AWS managed key %s, which no other account can use", keyARN),
			"re-encrypt the source AMI's snapshots with a customer managed key that the targets may use (copy the AMI in the source account with KmsKeyId), and share that", nil)
	case info.State != cloud.KeyEnabled:
		return mk(fmt.Sprintf("key %s that encrypts source snapshots is %s, so every copy of those sources fails", keyARN, info.State),
			"enable the key in account "+src+" (or cancel its deletion)", nil)
	}
	return nil
}

// dryRunCopy asks EC2 whether the copier role may make the copy of one of
// the sources in account and region (IAM's verdict on ec2:CopyImage, and
// ec2:CreateTags for the tags): the same request a run would send, with
// DryRun.
func (c *checker) dryRunCopy(ctx context.Context, account, region string, srcs []*sourceImage) {
	if c.r.e.set.Check.SkipCopyDryRun || len(srcs) == 0 {
		return
	}
	client, err := c.r.conn.Target(ctx, account, region)
	if err != nil {
		c.note("no CopyImage dry run in account %s Region %s: %v", account, region, err)
		return
	}
	dr, ok := client.(cloud.CopyDryRunner)
	if !ok {
		c.note("no CopyImage dry run in account %s Region %s: the EC2 client cannot make one", account, region)
		return
	}
	src := srcs[0]
	plan, err := c.r.e.shaper.shape(&src.img, account, region)
	if err != nil {
		c.note("no CopyImage dry run in account %s Region %s: %v", account, region, err)
		return
	}
	err = dr.DryRunCopyImage(ctx, plan.Input)
	switch {
	case err == nil:
	case cloud.CodeOf(err) == "UnauthorizedOperation":
		c.add(report.Finding{
			Kind: report.CopyNotAuthorized, Account: account, AccountName: c.r.accountName(account), Region: region,
			SourceImages: imageIDsOf(srcs), Pairs: len(srcs),
			Problem: fmt.Sprintf("IAM refuses the copier role's CopyImage of %s into account %s Region %s (a dry run with its tags)", src.img.ID, account, region),
			Fix: "allow the copier role ec2:CopyImage on images and snapshots, and ec2:CreateTags on them with the condition ec2:CreateAction = CopyImage " +
				"(the member StackSet's role has both); an SCP may also deny them",
			Error: err.Error(),
		})
	default:
		c.note("the CopyImage dry run of %s in account %s Region %s was inconclusive: %v", src.img.ID, account, region, err)
	}
}

// kmsProblems marks the pairs of a plan whose copy a key problem would
// fail: the pairs that copy or wait for a copy, whose account and Region's
// key (or source's snapshot key) the check finds wrong. The reason says
// so first, and the item carries the finding (KMSProblem).
func (r *run) kmsProblems(ctx context.Context) {
	if !r.e.set.Check.InPlan {
		return
	}
	byTarget := map[[2]string][]*report.Item{}
	itemSrc := map[*report.Item]*sourceImage{}
	var affected []*sourceImage
	seen := map[string]bool{}
	consider := func(it *report.Item) {
		switch it.Category {
		case report.Missing, report.InProgress, report.Failed, report.Stuck:
		default:
			return
		}
		src := r.found.byID[it.SourceImage]
		if src == nil {
			return
		}
		k := [2]string{it.Account, it.Region}
		byTarget[k] = append(byTarget[k], it)
		itemSrc[it] = src
		if !seen[src.img.ID] {
			seen[src.img.ID] = true
			affected = append(affected, src)
		}
	}
	// A Region's lines are its own: each is marked by the one goroutine
	// that checks its account and Region.
	for _, rw := range r.seen.work {
		for i := range rw.lines {
			consider(&rw.lines[i])
		}
		for _, pw := range rw.pairs {
			if pw.reported {
				consider(&pw.item)
			}
		}
	}
	if len(byTarget) == 0 {
		return
	}
	c := &checker{r: r, copyOnly: true}
	c.learnSourceKeys(ctx, affected)
	targets := sortedKeys2(byTarget)
	problems := make([][]string, len(targets))
	parallel(ctx, len(targets), r.e.set.Concurrency, func(ctx context.Context, i int) {
		account, region := targets[i][0], targets[i][1]
		for _, f := range c.keyFindings(ctx, account, region) {
			problems[i] = append(problems[i], f.Problem)
		}
		var srcs []*sourceImage
		for _, it := range byTarget[targets[i]] {
			srcs = append(srcs, itemSrc[it])
		}
		for _, f := range c.sourceKeyFindings(ctx, account, srcs) {
			// Only the items whose source uses that key.
			for _, it := range byTarget[targets[i]] {
				if slices.Contains(f.SourceImages, itemSrc[it].img.ID) {
					markKMS(it, f.Problem)
				}
			}
		}
	})
	for i, t := range targets {
		if len(problems[i]) == 0 {
			continue
		}
		for _, it := range byTarget[t] {
			markKMS(it, strings.Join(problems[i], "; "))
		}
	}
	for _, n := range c.notes {
		r.fail("kms check", errors.New(n))
	}
}

// markKMS records a key problem on a pair's line.
func markKMS(it *report.Item, problem string) {
	if it.KMSProblem != "" {
		it.KMSProblem += "; " + problem
	} else {
		it.KMSProblem = problem
	}
	it.Reason = "kms_problem: " + problem + "; " + it.Reason
}
