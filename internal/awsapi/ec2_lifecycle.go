package awsapi

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/amicopier/amicopier/internal/cloud"
)

// launchTemplatePageSize is MaxResults of DescribeLaunchTemplateVersions:
// the most EC2 takes ("This value can be between 1 and 200",
// DescribeLaunchTemplateVersions, Amazon EC2 API Reference).
const launchTemplatePageSize = 200

// EnableImageDeprecation sets the deprecation time of one of the caller's
// images. The engine sends whole minutes in the future within ten years
// (cloud.DeprecationMinute, cloud.MaxDeprecationAhead); a time with
// seconds would be rounded by EC2, and a later comparison would see a
// difference that is none.
func (a *ec2Adapter) EnableImageDeprecation(ctx context.Context, imageID string, at time.Time) error {
	const op = cloud.OpEnableImageDeprecation
	if !cloud.IsImageID(imageID) {
		return fmt.Errorf("%s: %q is not an image id", op, imageID)
	}
	if at.IsZero() {
		return fmt.Errorf("%s %s: no deprecation time", op, imageID)
	}
	_, err := a.api.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{
		ImageId:     aws.String(imageID),
		DeprecateAt: aws.Time(at.UTC()),
	})
	if err != nil {
		return apiError(op, err)
	}
	return nil
}

// DisableImageDeprecation cancels the deprecation time of one of the
// caller's images.
func (a *ec2Adapter) DisableImageDeprecation(ctx context.Context, imageID string) error {
	const op = cloud.OpDisableImageDeprecation
	if !cloud.IsImageID(imageID) {
		return fmt.Errorf("%s: %q is not an image id", op, imageID)
	}
	if _, err := a.api.DisableImageDeprecation(ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(imageID)}); err != nil {
		return apiError(op, err)
	}
	return nil
}

// LaunchTemplateImages lists the default and the latest version of every
// launch template of the account and Region in one paginated
// DescribeLaunchTemplateVersions: without a template id or name, Versions
// $Latest and $Default describe "all the latest or default launch template
// versions in your account" (DescribeLaunchTemplateVersions, Amazon EC2
// API Reference), so DescribeLaunchTemplates, one call per template more,
// is not needed. ResolveAlias asks EC2 for the AMI a Systems Manager
// parameter names ("If true, and if a Systems Manager parameter is
// specified for ImageId, the AMI ID is displayed in the response"); a
// reference EC2 leaves unresolved comes back as it is, and the engine
// treats it as naming any image. A version listed twice (the reference
// does not say whether one that is both default and latest is) is kept
// once.
func (a *ec2Adapter) LaunchTemplateImages(ctx context.Context) ([]cloud.LaunchTemplateVersion, error) {
	p := ec2.NewDescribeLaunchTemplateVersionsPaginator(a.api, &ec2.DescribeLaunchTemplateVersionsInput{
		Versions:     []string{"$Latest", "$Default"},
		ResolveAlias: aws.Bool(true),
		MaxResults:   aws.Int32(launchTemplatePageSize),
	})
	type key struct {
		id string
		n  int64
	}
	seen := map[key]int{}
	var out []cloud.LaunchTemplateVersion
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError(cloud.OpDescribeLaunchTemplateVersions, err)
		}
		for _, v := range page.LaunchTemplateVersions {
			lv := cloud.LaunchTemplateVersion{
				TemplateID: aws.ToString(v.LaunchTemplateId), TemplateName: aws.ToString(v.LaunchTemplateName),
				Version: aws.ToInt64(v.VersionNumber), Default: aws.ToBool(v.DefaultVersion),
			}
			if v.LaunchTemplateData != nil {
				lv.ImageID = aws.ToString(v.LaunchTemplateData.ImageId)
			}
			k := key{lv.TemplateID, lv.Version}
			if i, dup := seen[k]; dup {
				out[i].Default = out[i].Default || lv.Default
				continue
			}
			seen[k] = len(out)
			out = append(out, lv)
		}
	}
	return out, nil
}
