package awsfake

import (
	"context"
	"encoding/xml"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amicopier/amicopier/internal/cloud"
)

const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

type ec2Protocol struct{}

func (ec2Protocol) contentType() string { return "text/xml;charset=UTF-8" }
func (ec2Protocol) badKeyCode() string  { return "AuthFailure" }

func (ec2Protocol) errorBody(code, message, requestID string) []byte {
	type xmlError struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type response struct {
		XMLName   xml.Name   `xml:"Response"`
		Errors    []xmlError `xml:"Errors>Error"`
		RequestID string     `xml:"RequestID"`
	}
	b, _ := marshalXML(response{Errors: []xmlError{{Code: code, Message: message}}, RequestID: requestID})
	return b
}

func (ec2Protocol) handle(ctx context.Context, s *Server, r *Request) ([]byte, error) {
	client := s.cloud.Client(r.Account, r.Region)
	f := r.Form
	switch r.Op {
	case "DescribeImages":
		return s.describeImages(ctx, r)
	case "DescribeImageAttribute":
		if a := f.Get("Attribute"); a != "launchPermission" {
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves only the launchPermission attribute, not %q", a)
		}
		p, err := client.ImageLaunchPermission(ctx, f.Get("ImageId"))
		if err != nil {
			return nil, err
		}
		return marshalXML(struct {
			XMLName   xml.Name    `xml:"DescribeImageAttributeResponse"`
			Xmlns     string      `xml:"xmlns,attr"`
			RequestID string      `xml:"requestId"`
			ImageID   string      `xml:"imageId"`
			Perms     []xmlLaunch `xml:"launchPermission>item"`
		}{Xmlns: ec2Namespace, RequestID: s.requestID(), ImageID: f.Get("ImageId"), Perms: launchItems(p)})
	case "ModifyImageAttribute":
		add, err := launchChange(f, "LaunchPermission.Add")
		if err != nil {
			return nil, err
		}
		remove, err := launchChange(f, "LaunchPermission.Remove")
		if err != nil {
			return nil, err
		}
		switch {
		case add.Len() == 0 && remove.Len() == 0:
			return nil, cloud.Errorf(r.Op, "MissingParameter", "awsfake expects LaunchPermission.Add.N or LaunchPermission.Remove.N")
		case add.Len() > 0 && remove.Len() > 0:
			return nil, cloud.Errorf(r.Op, "InvalidParameterCombination", "awsfake takes additions and removals in calls of their own")
		case add.Len() > 0:
			err = client.AddImageLaunchPermission(ctx, f.Get("ImageId"), add)
		default:
			err = client.RemoveImageLaunchPermission(ctx, f.Get("ImageId"), remove)
		}
		if err != nil {
			return nil, err
		}
		return returnTrue("ModifyImageAttributeResponse", s.requestID())
	case "DescribeSnapshotAttribute":
		if a := f.Get("Attribute"); a != "createVolumePermission" {
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves only the createVolumePermission attribute, not %q", a)
		}
		ids, err := client.SnapshotVolumePermissions(ctx, f.Get("SnapshotId"))
		if err != nil {
			return nil, err
		}
		return marshalXML(struct {
			XMLName    xml.Name  `xml:"DescribeSnapshotAttributeResponse"`
			Xmlns      string    `xml:"xmlns,attr"`
			RequestID  string    `xml:"requestId"`
			SnapshotID string    `xml:"snapshotId"`
			Perms      []xmlUser `xml:"createVolumePermission>item"`
		}{Xmlns: ec2Namespace, RequestID: s.requestID(), SnapshotID: f.Get("SnapshotId"), Perms: users(ids)})
	case "ModifySnapshotAttribute":
		add := indexed(f, "CreateVolumePermission.Add.%d.UserId")
		remove := indexed(f, "CreateVolumePermission.Remove.%d.UserId")
		var err error
		switch {
		case len(add) == 0 && len(remove) == 0:
			return nil, cloud.Errorf(r.Op, "MissingParameter", "awsfake expects CreateVolumePermission.Add.N.UserId or CreateVolumePermission.Remove.N.UserId")
		case len(add) > 0 && len(remove) > 0:
			return nil, cloud.Errorf(r.Op, "InvalidParameterCombination", "awsfake takes additions and removals in calls of their own")
		case len(add) > 0:
			err = client.AddSnapshotVolumePermissions(ctx, f.Get("SnapshotId"), add)
		default:
			err = client.RemoveSnapshotVolumePermissions(ctx, f.Get("SnapshotId"), remove)
		}
		if err != nil {
			return nil, err
		}
		return returnTrue("ModifySnapshotAttributeResponse", s.requestID())
	case "CopyImage":
		in, err := copyInput(f)
		if err != nil {
			return nil, err
		}
		copier := client
		if r.Assumed {
			copier = s.cloud.RoleClient(r.Account, r.Region)
		}
		if f.Get("DryRun") == "true" {
			if err := copier.DryRunCopyImage(ctx, in); err != nil {
				return nil, err
			}
			return nil, cloud.Errorf(r.Op, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
		}
		id, err := copier.CopyImage(ctx, in)
		if err != nil {
			return nil, err
		}
		s.noteCopy(Copy{Account: r.Account, Region: r.Region, ImageID: id, SourceImageID: in.SourceImageID,
			SourceRegion: in.SourceRegion, ClientToken: in.ClientToken})
		return marshalXML(struct {
			XMLName   xml.Name `xml:"CopyImageResponse"`
			Xmlns     string   `xml:"xmlns,attr"`
			RequestID string   `xml:"requestId"`
			ImageID   string   `xml:"imageId"`
		}{Xmlns: ec2Namespace, RequestID: s.requestID(), ImageID: id})
	case "DeregisterImage":
		return s.deregisterImage(ctx, r)
	case "DeleteSnapshot":
		if err := client.DeleteSnapshot(ctx, f.Get("SnapshotId")); err != nil {
			return nil, err
		}
		return returnTrue("DeleteSnapshotResponse", s.requestID())
	case "DescribeInstances":
		return s.describeInstances(ctx, r)
	case "DescribeSnapshots":
		return s.describeSnapshots(ctx, r)
	}
	if body, ok, err := s.handleLifecycle(ctx, r); ok {
		return body, err
	}
	return nil, cloud.Errorf(r.Op, "InvalidAction", "awsfake does not implement EC2 action %q", r.Op)
}

// xmlLaunch is one launch permission item: one grantee.
type xmlLaunch struct {
	UserID string `xml:"userId,omitempty"`
	OU     string `xml:"organizationalUnitArn,omitempty"`
	Org    string `xml:"organizationArn,omitempty"`
	Group  string `xml:"group,omitempty"`
}

func launchItems(p cloud.LaunchPermission) []xmlLaunch {
	var out []xmlLaunch
	for _, id := range p.Accounts {
		out = append(out, xmlLaunch{UserID: id})
	}
	for _, arn := range p.OUs {
		out = append(out, xmlLaunch{OU: arn})
	}
	for _, arn := range p.Organizations {
		out = append(out, xmlLaunch{Org: arn})
	}
	if p.Public {
		out = append(out, xmlLaunch{Group: "all"})
	}
	return out
}

// launchChange decodes prefix.N.{UserId,OrganizationalUnitArn,
// OrganizationArn,Group}: each item names one grantee.
func launchChange(f url.Values, prefix string) (cloud.LaunchPermission, error) {
	var p cloud.LaunchPermission
	for i := 1; ; i++ {
		item := fmt.Sprintf("%s.%d.", prefix, i)
		user, ou, org, group := f.Get(item+"UserId"), f.Get(item+"OrganizationalUnitArn"), f.Get(item+"OrganizationArn"), f.Get(item+"Group")
		named := 0
		for _, v := range []string{user, ou, org, group} {
			if v != "" {
				named++
			}
		}
		switch {
		case named == 0:
			return p, nil
		case named > 1:
			return p, cloud.Errorf("ModifyImageAttribute", "InvalidParameterCombination", "%s names more than one grantee", strings.TrimSuffix(item, "."))
		case user != "":
			p.Accounts = append(p.Accounts, user)
		case ou != "":
			p.OUs = append(p.OUs, ou)
		case org != "":
			p.Organizations = append(p.Organizations, org)
		case group == "all":
			p.Public = true
		default:
			return p, cloud.Errorf("ModifyImageAttribute", "InvalidParameterValue", "%sGroup %q: the only group is all", item, group)
		}
	}
}

// deregisterImage serves DeregisterImage; with DeleteAssociatedSnapshots it
// answers one result per snapshot of the image, as EC2 does: "success",
// "skipped" for a snapshot another image uses, "internal-error" for one
// the simulator could not delete.
func (s *Server) deregisterImage(ctx context.Context, r *Request) ([]byte, error) {
	f := r.Form
	withSnapshots, err := boolParam(f, "DeleteAssociatedSnapshots")
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "%v", err)
	}
	id := f.Get("ImageId")
	var snaps []string
	if withSnapshots {
		if im, ok := s.cloud.Image(r.Account, r.Region, id); ok {
			snaps = im.SnapshotIDs()
		}
	}
	client := s.cloud.Client(r.Account, r.Region)
	failed, err := client.DeregisterImage(ctx, id, withSnapshots)
	if err != nil {
		return nil, err
	}
	type result struct {
		SnapshotID string `xml:"snapshotId"`
		ReturnCode string `xml:"returnCode"`
	}
	resp := struct {
		XMLName   xml.Name `xml:"DeregisterImageResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Return    bool     `xml:"return"`
		Results   []result `xml:"deleteSnapshotResultSet>item,omitempty"`
	}{Xmlns: ec2Namespace, RequestID: s.requestID(), Return: true}
	for _, snap := range snaps {
		code := "success"
		switch {
		case slices.Contains(failed, snap):
			code = "internal-error"
		default:
			if _, exists := s.cloud.Snapshot(r.Account, r.Region, snap); exists {
				code = "skipped"
			}
		}
		resp.Results = append(resp.Results, result{SnapshotID: snap, ReturnCode: code})
	}
	return marshalXML(resp)
}

type xmlUser struct {
	UserID string `xml:"userId"`
}

func users(ids []string) []xmlUser {
	out := make([]xmlUser, len(ids))
	for i, id := range ids {
		out[i] = xmlUser{UserID: id}
	}
	return out
}

func returnTrue(root, requestID string) ([]byte, error) {
	return marshalXML(struct {
		XMLName   xml.Name
		Xmlns     string `xml:"xmlns,attr"`
		RequestID string `xml:"requestId"`
		Return    bool   `xml:"return"`
	}{XMLName: xml.Name{Local: root}, Xmlns: ec2Namespace, RequestID: requestID, Return: true})
}

// indexed collects pattern.1, pattern.2, ... until one is missing (the
// query protocol numbers list members from 1).
func indexed(f url.Values, pattern string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[fmt.Sprintf(pattern, i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// Filter is one decoded EC2 filter.
type Filter struct {
	Name   string
	Values []string
}

// checkFilterValues refuses a describe that carries more filter values,
// over all its filters, than EC2 takes in one call (cloud.MaxFilterValues,
// FilterLimitExceeded).
func checkFilterValues(op string, fs []Filter) error {
	n := 0
	for _, flt := range fs {
		n += len(flt.Values)
	}
	if n > cloud.MaxFilterValues {
		return cloud.Errorf(op, "FilterLimitExceeded",
			"The request uses too many filters or too many filter values (%d; the maximum is %d)", n, cloud.MaxFilterValues)
	}
	return nil
}

// Filters decodes the Filter.N.Name / Filter.N.Value.M fields of an EC2
// request.
func Filters(f url.Values) []Filter {
	var out []Filter
	for i := 1; ; i++ {
		name := f.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name == "" {
			return out
		}
		out = append(out, Filter{Name: name, Values: indexed(f, fmt.Sprintf("Filter.%d.Value.%%d", i))})
	}
}

func unescape(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	escaped := false
	for _, r := range v {
		if r == '\\' && !escaped {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String()
}

// describeImages serves DescribeImages over the simulator, which lists
// disabled images as EC2 does with IncludeDisabled; without it they are
// left out, as EC2 leaves them out.
func (s *Server) describeImages(ctx context.Context, r *Request) ([]byte, error) {
	f := r.Form
	if owners := indexed(f, "Owner.%d"); !slices.Equal(owners, []string{"self"}) {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves only Owner.1=self, got %v", owners)
	}
	includeDisabled, err := boolParam(f, "IncludeDisabled")
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "%v", err)
	}
	var q cloud.ImageQuery
	q.ImageIDs = indexed(f, "ImageId.%d")
	filters := Filters(f)
	if err := checkFilterValues(r.Op, filters); err != nil {
		return nil, err
	}
	for _, flt := range filters {
		switch {
		case len(flt.Values) == 0:
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "The filter '%s' has no value", flt.Name)
		case flt.Name == "image-id":
			q.ImageIDs = append(q.ImageIDs, flt.Values...)
		case flt.Name == "state":
			for _, v := range flt.Values {
				q.States = append(q.States, cloud.ImageState(v))
			}
		case flt.Name == "tag-key":
			if len(flt.Values) != 1 {
				return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake: one tag-key value, got %d", len(flt.Values))
			}
			q.TagKeys = append(q.TagKeys, unescape(flt.Values[0]))
		case strings.HasPrefix(flt.Name, "tag:"):
			if q.Tags == nil {
				q.Tags = map[string][]string{}
			}
			for _, v := range flt.Values {
				q.Tags[strings.TrimPrefix(flt.Name, "tag:")] = append(q.Tags[strings.TrimPrefix(flt.Name, "tag:")], unescape(v))
			}
		default:
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "The filter '%s' is invalid", flt.Name)
		}
	}
	size, err := pageSize(f, s.opt.PageSize)
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "%v", err)
	}
	imgs, err := s.cloud.Client(r.Account, r.Region).DescribeImages(ctx, q)
	if err != nil {
		return nil, err
	}
	if !includeDisabled {
		imgs = slices.DeleteFunc(imgs, func(im cloud.Image) bool { return im.State == cloud.ImageDisabled })
	}
	page, next, err := paginate(imgs, f.Get("NextToken"), size)
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidPaginationToken", "%v", err)
	}
	return imagesResponse(s.answerBuffer(), s.requestID(), page, next), nil
}

// boolParam reads an optional boolean parameter; absent is false.
func boolParam(f url.Values, name string) (bool, error) {
	switch v := f.Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s %q: must be true or false", name, v)
	}
}

func pageSize(f url.Values, limit int) (int, error) {
	size := limit
	if v := f.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return 0, fmt.Errorf("MaxResults %q: must be between 5 and 1000", v)
		}
		size = min(size, n)
	}
	return size, nil
}

// paginate cuts one page out of items; the token is the offset.
func paginate[T any](items []T, token string, size int) ([]T, string, error) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(token, "page-"))
		if err != nil || n < 0 || n > len(items) {
			return nil, "", fmt.Errorf("token %q is not valid", token)
		}
		start = n
	}
	end := min(len(items), start+size)
	next := ""
	if end < len(items) {
		next = fmt.Sprintf("page-%d", end)
	}
	return items[start:end], next, nil
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// copyInput decodes a CopyImage request. The image's tag specification
// must equal the snapshots' (amicopier tags both alike).
func copyInput(f url.Values) (cloud.CopyImageInput, error) {
	in := cloud.CopyImageInput{
		SourceImageID: f.Get("SourceImageId"),
		SourceRegion:  f.Get("SourceRegion"),
		Name:          f.Get("Name"),
		Description:   f.Get("Description"),
		Encrypted:     f.Get("Encrypted") == "true",
		KMSKeyID:      f.Get("KmsKeyId"),
		ClientToken:   f.Get("ClientToken"),
	}
	specs := map[string]map[string]string{}
	for i := 1; ; i++ {
		rt := f.Get(fmt.Sprintf("TagSpecification.%d.ResourceType", i))
		if rt == "" {
			break
		}
		if rt != "image" && rt != "snapshot" {
			return in, cloud.Errorf("CopyImage", "InvalidParameterValue", "TagSpecification.%d.ResourceType %q: CopyImage tags only image and snapshot", i, rt)
		}
		tags := map[string]string{}
		for j := 1; ; j++ {
			k, ok := f[fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", i, j)]
			if !ok {
				break
			}
			tags[k[0]] = f.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Value", i, j))
		}
		specs[rt] = tags
	}
	if len(specs) > 0 {
		if fmt.Sprint(specs["image"]) != fmt.Sprint(specs["snapshot"]) {
			return in, cloud.Errorf("CopyImage", "InvalidParameterValue", "awsfake: image and snapshot tag specifications differ")
		}
		in.Tags = specs["image"]
	}
	return in, nil
}

// describeSnapshots serves DescribeSnapshots as SnapshotKeys sends it:
// Owner.1=self and one snapshot-id filter. The keys come from the
// simulator's SnapshotKeys (one counted call per request); unencrypted
// snapshots of the caller, which EC2 lists too, are found through the
// simulator's inspection.
func (s *Server) describeSnapshots(ctx context.Context, r *Request) ([]byte, error) {
	f := r.Form
	if owners := indexed(f, "Owner.%d"); !slices.Equal(owners, []string{"self"}) {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves only Owner.1=self, got %v", owners)
	}
	if f.Has("SnapshotId.1") {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake serves snapshot ids in a snapshot-id filter, not SnapshotId.N")
	}
	var ids []string
	filters := Filters(f)
	if err := checkFilterValues(r.Op, filters); err != nil {
		return nil, err
	}
	for _, flt := range filters {
		switch {
		case flt.Name != "snapshot-id":
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "The filter '%s' is invalid", flt.Name)
		case len(flt.Values) == 0:
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "The filter '%s' has no value", flt.Name)
		}
		ids = append(ids, flt.Values...)
	}
	if ids == nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake expects a snapshot-id filter")
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	size, err := pageSize(f, s.opt.PageSize)
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "%v", err)
	}
	keys, err := s.cloud.Client(r.Account, r.Region).SnapshotKeys(ctx, ids)
	if err != nil {
		return nil, err
	}
	var found []xmlSnapshot
	for _, id := range ids {
		snap, ok := s.cloud.Snapshot(r.Account, r.Region, id)
		if !ok {
			continue
		}
		x := xmlSnapshot{
			SnapshotID: id, VolumeID: "vol-ffffffff", Status: "completed", Progress: "100%", OwnerID: r.Account,
			StartTime:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000Z"),
			VolumeSize: snap.Size, StorageTier: "standard",
		}
		if key, ok := keys[id]; ok {
			x.Encrypted, x.KMSKeyID = true, key
		}
		for _, k := range slices.Sorted(maps.Keys(snap.Tags)) {
			x.Tags = append(x.Tags, xmlTag{Key: k, Value: snap.Tags[k]})
		}
		found = append(found, x)
	}
	page, next, err := paginate(found, f.Get("NextToken"), size)
	if err != nil {
		return nil, cloud.Errorf(r.Op, "InvalidPaginationToken", "%v", err)
	}
	return marshalXML(struct {
		XMLName   xml.Name      `xml:"DescribeSnapshotsResponse"`
		Xmlns     string        `xml:"xmlns,attr"`
		RequestID string        `xml:"requestId"`
		Snapshots []xmlSnapshot `xml:"snapshotSet>item"`
		NextToken string        `xml:"nextToken,omitempty"`
	}{Xmlns: ec2Namespace, RequestID: s.requestID(), Snapshots: page, NextToken: next})
}

type xmlSnapshot struct {
	SnapshotID  string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int32    `xml:"volumeSize"`
	Encrypted   bool     `xml:"encrypted"`
	KMSKeyID    string   `xml:"kmsKeyId,omitempty"`
	StorageTier string   `xml:"storageTier"`
	Tags        []xmlTag `xml:"tagSet>item"`
}

func (s *Server) describeInstances(ctx context.Context, r *Request) ([]byte, error) {
	var ids, states []string
	filters := Filters(r.Form)
	if err := checkFilterValues(r.Op, filters); err != nil {
		return nil, err
	}
	for _, flt := range filters {
		switch flt.Name {
		case "image-id":
			ids = flt.Values
		case "instance-state-name":
			states = flt.Values
		default:
			return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "The filter '%s' is invalid", flt.Name)
		}
	}
	if len(ids) == 0 || slices.Contains(states, "terminated") {
		return nil, cloud.Errorf(r.Op, "InvalidParameterValue", "awsfake expects an image-id filter and an instance-state-name filter without terminated")
	}
	counts, err := s.cloud.Client(r.Account, r.Region).InstancesUsingImages(ctx, ids)
	if err != nil {
		return nil, err
	}
	type state struct {
		Code int    `xml:"code"`
		Name string `xml:"name"`
	}
	type instance struct {
		InstanceID string `xml:"instanceId"`
		ImageID    string `xml:"imageId"`
		State      state  `xml:"instanceState"`
		LaunchTime string `xml:"launchTime"`
	}
	type reservation struct {
		ReservationID string     `xml:"reservationId"`
		OwnerID       string     `xml:"ownerId"`
		Instances     []instance `xml:"instancesSet>item"`
	}
	resp := struct {
		XMLName      xml.Name      `xml:"DescribeInstancesResponse"`
		Xmlns        string        `xml:"xmlns,attr"`
		RequestID    string        `xml:"requestId"`
		Reservations []reservation `xml:"reservationSet>item"`
	}{Xmlns: ec2Namespace, RequestID: s.requestID()}
	n := 0
	for _, id := range ids {
		for range counts[id] {
			n++
			resp.Reservations = append(resp.Reservations, reservation{
				ReservationID: fmt.Sprintf("r-%017x", n), OwnerID: r.Account,
				Instances: []instance{{InstanceID: fmt.Sprintf("i-%017x", n), ImageID: id, State: state{Code: 16, Name: "running"},
					LaunchTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)}},
			})
		}
	}
	return marshalXML(resp)
}
