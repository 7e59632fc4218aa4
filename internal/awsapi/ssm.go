package awsapi

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

// ssmAdapter is the Parameter Store port for one account (the copier
// role) and Region.
type ssmAdapter struct {
	api     *ssm.Client
	account string
	region  string
}

// TargetParameters returns a Parameter Store client acting as the copier
// role of accountID in region, through the role session Target uses (the
// connector is a cloud.ParameterConnector). Its calls are paced per
// account, Region and API like EC2's (pacing's parameter buckets).
func (c *Connector) TargetParameters(ctx context.Context, accountID, region string) (cloud.ParameterStore, error) {
	r, err := c.targetRole(ctx, "parameter", accountID, region)
	if err != nil {
		return nil, err
	}
	cl := cachedClient(c, &c.ssmClients, [2]string{accountID, region}, func() *ssm.Client {
		return ssm.NewFromConfig(c.s.base, func(o *ssm.Options) {
			o.Region = region
			o.Credentials = r.creds
			if ep := c.s.cfg.AWS.Endpoints.SSM; ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, c.pace, accountID, region, c.readOnly))
		})
	})
	return &ssmAdapter{api: cl, account: accountID, region: region}, nil
}

// GetParameters reads up to cloud.MaxGetParameters parameters; the names
// SSM lists as InvalidParameters (they do not exist) are left out.
func (a *ssmAdapter) GetParameters(ctx context.Context, names []string) (map[string]cloud.Parameter, error) {
	if len(names) > cloud.MaxGetParameters {
		return nil, fmt.Errorf("GetParameters: %d names, SSM takes at most %d a call", len(names), cloud.MaxGetParameters)
	}
	out, err := a.api.GetParameters(ctx, &ssm.GetParametersInput{Names: names})
	if err != nil {
		return nil, apiError("GetParameters", err)
	}
	got := make(map[string]cloud.Parameter, len(out.Parameters))
	for _, p := range out.Parameters {
		cp := cloud.Parameter{
			Name: aws.ToString(p.Name), Value: aws.ToString(p.Value), Type: string(p.Type),
			DataType: aws.ToString(p.DataType), Version: p.Version,
		}
		if p.LastModifiedDate != nil {
			cp.Modified = p.LastModifiedDate.UTC()
		}
		got[cp.Name] = cp
	}
	return got, nil
}

// ParameterTags lists a parameter's tags.
func (a *ssmAdapter) ParameterTags(ctx context.Context, name string) (map[string]string, error) {
	out, err := a.api.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{
		ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String(name),
	})
	if err != nil {
		return nil, apiError("ListTagsForResource", err)
	}
	tags := make(map[string]string, len(out.TagList))
	for _, t := range out.TagList {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// PutParameter writes a String parameter and returns its new version.
func (a *ssmAdapter) PutParameter(ctx context.Context, in cloud.PutParameterInput) (int64, error) {
	req := &ssm.PutParameterInput{
		Name: aws.String(in.Name), Value: aws.String(in.Value), Type: types.ParameterTypeString,
		Overwrite: aws.Bool(in.Overwrite), Tags: ssmTags(in.Tags),
	}
	if in.DataType != "" {
		req.DataType = aws.String(in.DataType)
	}
	if in.Description != "" {
		req.Description = aws.String(in.Description)
	}
	out, err := a.api.PutParameter(ctx, req)
	if err != nil {
		return 0, apiError("PutParameter", err)
	}
	return out.Version, nil
}

// TagParameter adds tags to an existing parameter.
func (a *ssmAdapter) TagParameter(ctx context.Context, name string, tags map[string]string) error {
	_, err := a.api.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{
		ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String(name), Tags: ssmTags(tags),
	})
	return apiError("AddTagsToResource", err)
}

func ssmTags(m map[string]string) []types.Tag {
	if len(m) == 0 {
		return nil
	}
	out := make([]types.Tag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

var (
	_ cloud.ParameterConnector = (*Connector)(nil)
	_ cloud.ParameterStore     = (*ssmAdapter)(nil)
)
