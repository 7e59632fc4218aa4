package awsapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

const (
	// describePageSize is MaxResults of every paginated describe: the
	// largest EC2 accepts, so a listing takes as few calls as possible.
	describePageSize = 1000
)

// instanceStatesInUse are the instance states that still hold an image:
// every state but terminated.
var instanceStatesInUse = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// ec2Adapter is the engine's EC2 port for one account and Region.
type ec2Adapter struct {
	c       *Connector
	api     *ec2.Client
	account string
	region  string
}

// DescribeImages lists the caller's own images matching q, page by page.
// Image ids go in an image-id filter (not ImageIds), so an id that does
// not exist simply does not match, as the port promises; more than 200
// ids are split across calls. Only filters EC2 evaluates exactly are sent;
// the whole query is also checked here, so the result is exact whatever
// EC2's filter semantics. IncludeDisabled is always set: EC2 hides
// disabled images otherwise, even from their owner, and a disabled source
// would look deleted (its copies orphaned) and a disabled copy missing.
func (a *ec2Adapter) DescribeImages(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error) {
	if len(q.ImageIDs) == 0 {
		return a.describeImages(ctx, q, nil)
	}
	ids := slices.Clone(q.ImageIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	room, err := idRoom("DescribeImages", imageFilters(q, nil))
	if err != nil {
		return nil, err
	}
	var out []cloud.Image
	for chunk := range slices.Chunk(ids, room) {
		imgs, err := a.describeImages(ctx, q, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

func (a *ec2Adapter) describeImages(ctx context.Context, q cloud.ImageQuery, ids []string) ([]cloud.Image, error) {
	in := &ec2.DescribeImagesInput{
		Owners:          []string{"self"},
		Filters:         imageFilters(q, ids),
		IncludeDisabled: aws.Bool(true),
		MaxResults:      aws.Int32(describePageSize),
	}
	var out []cloud.Image
	p := ec2.NewDescribeImagesPaginator(a.api, in)
	fast := decodeImagesFast(a.region, &a.c.bodies)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, fast)
		if err != nil {
			return nil, apiError("DescribeImages", err)
		}
		imgs, decoded := page.ResultMetadata.Get(imagesKey{}).([]cloud.Image)
		if !decoded {
			imgs = make([]cloud.Image, len(page.Images))
			for i := range page.Images {
				imgs[i] = convertImage(&page.Images[i], a.region)
			}
		}
		// The page's images are this call's own: filter them in place,
		// and keep a lone page's slice whole.
		imgs = slices.DeleteFunc(imgs, func(im cloud.Image) bool {
			// "Recently deregistered images appear in the returned
			// results for a short interval" (DescribeImages, Amazon EC2
			// API Reference): gone, unless asked for by state.
			if im.State == cloud.ImageDeregistered && !slices.Contains(q.States, cloud.ImageDeregistered) {
				return true
			}
			return !matches(&im, q)
		})
		if out == nil {
			out = imgs
		} else {
			out = append(out, imgs...)
		}
	}
	return out, nil
}

// idRoom is how many ids one call may put in its id filter next to the
// filters others: EC2 counts filter values over all the filters of a call
// together (cloud.MaxFilterValues).
func idRoom(op string, others []types.Filter) (int, error) {
	used := 0
	for _, f := range others {
		used += len(f.Values)
	}
	if used >= cloud.MaxFilterValues {
		return 0, fmt.Errorf("%s: the query alone carries %d filter values, at most %d leave room for an id", op, used, cloud.MaxFilterValues-1)
	}
	return cloud.MaxFilterValues - used, nil
}

// imageFilters renders a query as EC2 filters, in a stable order.
func imageFilters(q cloud.ImageQuery, ids []string) []types.Filter {
	var fs []types.Filter
	if len(ids) > 0 {
		fs = append(fs, types.Filter{Name: aws.String("image-id"), Values: ids})
	}
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, s := range q.States {
			states[i] = string(s)
		}
		fs = append(fs, types.Filter{Name: aws.String("state"), Values: states})
	}
	// One tag-key filter: whether EC2 ANDs repeated filter names is not
	// documented, so further keys are only checked here.
	presence := slices.Clone(q.TagKeys)
	for _, k := range slices.Sorted(maps.Keys(q.Tags)) {
		values := q.Tags[k]
		if len(values) == 0 {
			presence = append(presence, k)
			continue
		}
		escaped := make([]string, len(values))
		for i, v := range values {
			escaped[i] = escapeFilterValue(v)
		}
		fs = append(fs, types.Filter{Name: aws.String("tag:" + k), Values: escaped})
	}
	if len(presence) > 0 {
		fs = append(fs, types.Filter{Name: aws.String("tag-key"), Values: []string{escapeFilterValue(presence[0])}})
	}
	return fs
}

// escapeFilterValue makes EC2 match v literally: filter values treat * and
// ? as wildcards, and \ escapes.
func escapeFilterValue(v string) string {
	if !strings.ContainsAny(v, `*?\`) {
		return v
	}
	var b strings.Builder
	for _, r := range v {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// matches checks the query on a converted image.
func matches(img *cloud.Image, q cloud.ImageQuery) bool {
	for _, k := range q.TagKeys {
		if _, ok := img.Tags[k]; !ok {
			return false
		}
	}
	for k, values := range q.Tags {
		v, ok := img.Tags[k]
		if !ok || (len(values) > 0 && !slices.Contains(values, v)) {
			return false
		}
	}
	if len(q.States) > 0 && !slices.Contains(q.States, img.State) {
		return false
	}
	return true
}

// convertImage turns an SDK image into the engine's. Block devices carry
// no key: DescribeImages never reports one (EbsBlockDevice.KmsKeyId is
// only filled in requests such as RunInstances), SnapshotKeys does.
func convertImage(im *types.Image, region string) cloud.Image {
	out := cloud.Image{
		ID:          aws.ToString(im.ImageId),
		Name:        aws.ToString(im.Name),
		Description: aws.ToString(im.Description),
		OwnerID:     aws.ToString(im.OwnerId),
		Region:      region,
		State:       cloud.ImageState(im.State),
		Tags:        make(map[string]string, len(im.Tags)),
	}
	if sr := im.StateReason; sr != nil {
		out.StateReason = aws.ToString(sr.Message)
		if out.StateReason == "" {
			out.StateReason = aws.ToString(sr.Code)
		}
	}
	if s := aws.ToString(im.CreationDate); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			out.CreationDate = t.UTC()
		}
	}
	if s := aws.ToString(im.DeprecationTime); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			out.DeprecationTime = t.UTC()
		}
	}
	for _, t := range im.Tags {
		out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, bd := range im.BlockDeviceMappings {
		if bd.Ebs == nil {
			continue
		}
		out.BlockDevices = append(out.BlockDevices, cloud.BlockDevice{
			DeviceName: aws.ToString(bd.DeviceName),
			SnapshotID: aws.ToString(bd.Ebs.SnapshotId),
			Encrypted:  aws.ToBool(bd.Ebs.Encrypted),
			VolumeSize: aws.ToInt32(bd.Ebs.VolumeSize),
		})
	}
	return out
}

// SnapshotKeys returns the KMS key ARN of each of the caller's encrypted
// snapshots among snapshotIDs. The ids, deduplicated, go 200 to a
// DescribeSnapshots call in a snapshot-id filter (not SnapshotIds, which
// fails the whole call on one id that does not exist), with OwnerIds self,
// page by page.
func (a *ec2Adapter) SnapshotKeys(ctx context.Context, snapshotIDs []string) (map[string]string, error) {
	ids := slices.Clone(snapshotIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[string]string)
	for chunk := range slices.Chunk(ids, cloud.MaxFilterValues) {
		p := ec2.NewDescribeSnapshotsPaginator(a.api, &ec2.DescribeSnapshotsInput{
			Filters:    []types.Filter{{Name: aws.String("snapshot-id"), Values: chunk}},
			OwnerIds:   []string{"self"},
			MaxResults: aws.Int32(describePageSize),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, apiError("DescribeSnapshots", err)
			}
			for _, s := range page.Snapshots {
				id, key := aws.ToString(s.SnapshotId), aws.ToString(s.KmsKeyId)
				if _, asked := slices.BinarySearch(chunk, id); asked && aws.ToBool(s.Encrypted) && key != "" {
					out[id] = key
				}
			}
		}
	}
	return out, nil
}

// checkAccounts refuses a permission batch EC2 must never see: too long,
// or with something that is not an account id (targets come from
// untrusted tags; the engine checks them, this is the last line).
func checkAccounts(op, resource string, ids []string) error {
	if len(ids) == 0 {
		return fmt.Errorf("%s %s: no account ids in the batch", op, resource)
	}
	if len(ids) > cloud.MaxShareBatch {
		return fmt.Errorf("%s %s: %d account ids in one call, at most %d", op, resource, len(ids), cloud.MaxShareBatch)
	}
	for _, id := range ids {
		if !cloud.IsAccountID(id) {
			return fmt.Errorf("%s %s: %q is not a 12-digit account id", op, resource, id)
		}
	}
	return nil
}

// checkLaunch is checkAccounts for a launch permission change: accounts,
// OU ARNs and organisation ARNs, at most MaxLaunchPermissionBatch in all.
// The adapter never makes an image public.
func checkLaunch(op, resource string, p cloud.LaunchPermission) error {
	switch {
	case p.Public:
		return fmt.Errorf("%s %s: amicopier never makes an image public", op, resource)
	case p.Len() == 0:
		return fmt.Errorf("%s %s: no grantee in the batch", op, resource)
	case p.Len() > cloud.MaxLaunchPermissionBatch:
		return fmt.Errorf("%s %s: %d grantees in one call, at most %d", op, resource, p.Len(), cloud.MaxLaunchPermissionBatch)
	}
	for _, id := range p.Accounts {
		if !cloud.IsAccountID(id) {
			return fmt.Errorf("%s %s: %q is not a 12-digit account id", op, resource, id)
		}
	}
	for _, arn := range p.OUs {
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":ou/") {
			return fmt.Errorf("%s %s: %q is not an organizational unit ARN", op, resource, arn)
		}
	}
	for _, arn := range p.Organizations {
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":organization/") {
			return fmt.Errorf("%s %s: %q is not an organization ARN", op, resource, arn)
		}
	}
	return nil
}

// launchPermissions renders p as EC2 launch permission entries, one
// grantee each.
func launchPermissions(p cloud.LaunchPermission) []types.LaunchPermission {
	out := make([]types.LaunchPermission, 0, p.Len())
	for _, id := range p.Accounts {
		out = append(out, types.LaunchPermission{UserId: aws.String(id)})
	}
	for _, arn := range p.OUs {
		out = append(out, types.LaunchPermission{OrganizationalUnitArn: aws.String(arn)})
	}
	for _, arn := range p.Organizations {
		out = append(out, types.LaunchPermission{OrganizationArn: aws.String(arn)})
	}
	return out
}

// ImageLaunchPermission returns who may launch one of the caller's images
// (DescribeImageAttribute launchPermission): account ids, OU and
// organisation ARNs, and Group "all" for a public image.
func (a *ec2Adapter) ImageLaunchPermission(ctx context.Context, imageID string) (cloud.LaunchPermission, error) {
	out, err := a.api.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId:   aws.String(imageID),
		Attribute: types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		return cloud.LaunchPermission{}, apiError("DescribeImageAttribute", err)
	}
	var p cloud.LaunchPermission
	for _, lp := range out.LaunchPermissions {
		switch {
		case aws.ToString(lp.UserId) != "":
			p.Accounts = append(p.Accounts, aws.ToString(lp.UserId))
		case aws.ToString(lp.OrganizationalUnitArn) != "":
			p.OUs = append(p.OUs, aws.ToString(lp.OrganizationalUnitArn))
		case aws.ToString(lp.OrganizationArn) != "":
			p.Organizations = append(p.Organizations, aws.ToString(lp.OrganizationArn))
		case lp.Group == types.PermissionGroupAll:
			p.Public = true
		}
	}
	return p, nil
}

// AddImageLaunchPermission grants add launch permission in one
// ModifyImageAttribute call.
func (a *ec2Adapter) AddImageLaunchPermission(ctx context.Context, imageID string, add cloud.LaunchPermission) error {
	return a.modifyLaunch(ctx, imageID, add, true)
}

// RemoveImageLaunchPermission takes remove off the launch permission in one
// ModifyImageAttribute call.
func (a *ec2Adapter) RemoveImageLaunchPermission(ctx context.Context, imageID string, remove cloud.LaunchPermission) error {
	return a.modifyLaunch(ctx, imageID, remove, false)
}

func (a *ec2Adapter) modifyLaunch(ctx context.Context, imageID string, p cloud.LaunchPermission, add bool) error {
	const op = "ModifyImageAttribute"
	if err := checkLaunch(op, imageID, p); err != nil {
		return err
	}
	var mods types.LaunchPermissionModifications
	if add {
		mods.Add = launchPermissions(p)
	} else {
		mods.Remove = launchPermissions(p)
	}
	_, err := a.api.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(imageID),
		LaunchPermission: &mods,
	})
	if err != nil {
		return apiError(op, err)
	}
	return nil
}

// SnapshotVolumePermissions returns the accounts allowed to create
// volumes from one of the caller's snapshots.
func (a *ec2Adapter) SnapshotVolumePermissions(ctx context.Context, snapshotID string) ([]string, error) {
	out, err := a.api.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
		SnapshotId: aws.String(snapshotID),
		Attribute:  types.SnapshotAttributeNameCreateVolumePermission,
	})
	if err != nil {
		return nil, apiError("DescribeSnapshotAttribute", err)
	}
	var ids []string
	for _, p := range out.CreateVolumePermissions {
		if id := aws.ToString(p.UserId); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// AddSnapshotVolumePermissions grants accountIDs create-volume permission
// in one ModifySnapshotAttribute call.
func (a *ec2Adapter) AddSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error {
	return a.modifyVolume(ctx, snapshotID, accountIDs, true)
}

// RemoveSnapshotVolumePermissions takes accountIDs off the create-volume
// permission in one ModifySnapshotAttribute call.
func (a *ec2Adapter) RemoveSnapshotVolumePermissions(ctx context.Context, snapshotID string, accountIDs []string) error {
	return a.modifyVolume(ctx, snapshotID, accountIDs, false)
}

func (a *ec2Adapter) modifyVolume(ctx context.Context, snapshotID string, accountIDs []string, add bool) error {
	const op = "ModifySnapshotAttribute"
	if err := checkAccounts(op, snapshotID, accountIDs); err != nil {
		return err
	}
	perms := make([]types.CreateVolumePermission, len(accountIDs))
	for i, id := range accountIDs {
		perms[i] = types.CreateVolumePermission{UserId: aws.String(id)}
	}
	in := &ec2.ModifySnapshotAttributeInput{
		SnapshotId:             aws.String(snapshotID),
		Attribute:              types.SnapshotAttributeNameCreateVolumePermission,
		CreateVolumePermission: &types.CreateVolumePermissionModifications{},
	}
	if add {
		in.CreateVolumePermission.Add = perms
	} else {
		in.CreateVolumePermission.Remove = perms
	}
	if _, err := a.api.ModifySnapshotAttribute(ctx, in); err != nil {
		return apiError(op, err)
	}
	return nil
}

// CopyImage starts an encrypted copy in the caller's account and Region.
// The tags go on the image and on its snapshots (tags of a shared image
// are invisible to the copier, so they travel in the request).
func (a *ec2Adapter) CopyImage(ctx context.Context, in cloud.CopyImageInput) (string, error) {
	out, err := a.api.CopyImage(ctx, copyImageRequest(in))
	if err != nil {
		return "", apiError("CopyImage", err)
	}
	id := aws.ToString(out.ImageId)
	return id, nil
}

// DryRunCopyImage sends the same request as CopyImage with DryRun set: EC2
// answers DryRunOperation when IAM allows it (nil here), UnauthorizedOperation
// otherwise, and copies nothing. The read-only guard lets it through and
// the counters count it as cloud.OpCopyImageDryRun.
func (a *ec2Adapter) DryRunCopyImage(ctx context.Context, in cloud.CopyImageInput) error {
	req := copyImageRequest(in)
	req.DryRun = aws.Bool(true)
	req.ClientToken = nil
	_, err := a.api.CopyImage(ctx, req)
	if err == nil {
		return nil
	}
	err = apiError("CopyImage", err)
	if cloud.CodeOf(err) == "DryRunOperation" {
		return nil
	}
	return err
}

// copyImageRequest renders a copy request for the SDK.
func copyImageRequest(in cloud.CopyImageInput) *ec2.CopyImageInput {
	req := &ec2.CopyImageInput{
		SourceImageId: aws.String(in.SourceImageID),
		SourceRegion:  aws.String(in.SourceRegion),
		Name:          aws.String(in.Name),
		Encrypted:     aws.Bool(in.Encrypted),
	}
	if in.Description != "" {
		req.Description = aws.String(in.Description)
	}
	if in.KMSKeyID != "" {
		req.KmsKeyId = aws.String(in.KMSKeyID)
	}
	if in.ClientToken != "" {
		req.ClientToken = aws.String(in.ClientToken)
	}
	if len(in.Tags) > 0 {
		tags := make([]types.Tag, 0, len(in.Tags))
		for _, k := range slices.Sorted(maps.Keys(in.Tags)) {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(in.Tags[k])})
		}
		req.TagSpecifications = []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: tags},
			{ResourceType: types.ResourceTypeSnapshot, Tags: tags},
		}
	}
	return req
}

// DeregisterImage deregisters one of the caller's images. With
// deleteSnapshots it sets DeleteAssociatedSnapshots and reads EC2's verdict
// per snapshot: "skipped" (another AMI uses it) is not a failure, every
// other code but "success" is, and that snapshot is returned in failed.
func (a *ec2Adapter) DeregisterImage(ctx context.Context, imageID string, deleteSnapshots bool) ([]string, error) {
	in := &ec2.DeregisterImageInput{ImageId: aws.String(imageID)}
	if deleteSnapshots {
		in.DeleteAssociatedSnapshots = aws.Bool(true)
	}
	out, err := a.api.DeregisterImage(ctx, in)
	if err != nil {
		return nil, apiError("DeregisterImage", err)
	}
	var failed []string
	for _, r := range out.DeleteSnapshotResults {
		switch r.ReturnCode {
		case types.SnapshotReturnCodesSuccess, types.SnapshotReturnCodesWarnSkipped:
		default:
			failed = append(failed, aws.ToString(r.SnapshotId))
		}
	}
	return failed, nil
}

// DeleteSnapshot deletes one of the caller's snapshots.
func (a *ec2Adapter) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if _, err := a.api.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snapshotID)}); err != nil {
		return apiError("DeleteSnapshot", err)
	}
	return nil
}

// InstancesUsingImages counts the caller's instances that are not
// terminated, by the image they were launched from. Every requested id is
// in the result.
func (a *ec2Adapter) InstancesUsingImages(ctx context.Context, imageIDs []string) (map[string]int, error) {
	out := make(map[string]int, len(imageIDs))
	ids := slices.Clone(imageIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		out[id] = 0
	}
	states := types.Filter{Name: aws.String("instance-state-name"), Values: instanceStatesInUse}
	room, err := idRoom("DescribeInstances", []types.Filter{states})
	if err != nil {
		return nil, err
	}
	for chunk := range slices.Chunk(ids, room) {
		p := ec2.NewDescribeInstancesPaginator(a.api, &ec2.DescribeInstancesInput{
			Filters:    []types.Filter{{Name: aws.String("image-id"), Values: chunk}, states},
			MaxResults: aws.Int32(describePageSize),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, apiError("DescribeInstances", err)
			}
			for _, res := range page.Reservations {
				for _, inst := range res.Instances {
					if inst.State != nil && inst.State.Name == types.InstanceStateNameTerminated {
						continue
					}
					if id := aws.ToString(inst.ImageId); id != "" {
						if _, wanted := out[id]; wanted {
							out[id]++
						}
					}
				}
			}
		}
	}
	return out, nil
}
