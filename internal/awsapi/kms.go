package awsapi

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/amicopier/amicopier/internal/cloud"
)

// defaultKeyPolicy is the one policy name GetKeyPolicy accepts ("default",
// GetKeyPolicy, AWS KMS API Reference,
// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html).
const defaultKeyPolicy = "default"

// kmsAdapter is the preflight check's KMS port for one account (the
// copier role) and Region.
type kmsAdapter struct {
	api     *kms.Client
	account string
	region  string
}

// TargetKeys returns a KMS client acting as the copier role of accountID
// in region, through the role session Target uses (the connector is a
// cloud.KeyConnector). Clients of one account share its buckets.
func (c *Connector) TargetKeys(ctx context.Context, accountID, region string) (cloud.KeyInspector, error) {
	r, err := c.targetRole(ctx, "key", accountID, region)
	if err != nil {
		return nil, err
	}
	cl := cachedClient(c, &c.kmsClients, [2]string{accountID, region}, func() *kms.Client {
		return kms.NewFromConfig(c.s.base, func(o *kms.Options) {
			o.Region = region
			o.Credentials = r.creds
			if ep := c.s.cfg.AWS.Endpoints.KMS; ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			o.APIOptions = append(o.APIOptions, stackOptions(&c.counts, c.pace, accountID, region, c.readOnly))
		})
	})
	return &kmsAdapter{api: cl, account: accountID, region: region}, nil
}

// DescribeKey describes a key by key id, alias name, key ARN or alias ARN.
func (a *kmsAdapter) DescribeKey(ctx context.Context, keyID string) (cloud.KeyInfo, error) {
	out, err := a.api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return cloud.KeyInfo{}, apiError("DescribeKey", err)
	}
	m := out.KeyMetadata
	if m == nil {
		return cloud.KeyInfo{}, fmt.Errorf("DescribeKey %s: the answer has no key metadata", keyID)
	}
	info := cloud.KeyInfo{
		ID: aws.ToString(m.KeyId), ARN: aws.ToString(m.Arn), Account: aws.ToString(m.AWSAccountId),
		Region: cloud.KeyRegion(aws.ToString(m.Arn)), State: cloud.KeyState(m.KeyState),
		Spec: string(m.KeySpec), Usage: string(m.KeyUsage), Manager: string(m.KeyManager),
	}
	if m.DeletionDate != nil {
		info.DeletionDate = m.DeletionDate.UTC()
	}
	return info, nil
}

// KeyPolicy returns the key's default policy document.
func (a *kmsAdapter) KeyPolicy(ctx context.Context, keyID string) (string, error) {
	out, err := a.api.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyID), PolicyName: aws.String(defaultKeyPolicy)})
	if err != nil {
		return "", apiError("GetKeyPolicy", err)
	}
	return aws.ToString(out.Policy), nil
}

// KeyGrants lists the key's grants to grantee, page by page.
func (a *kmsAdapter) KeyGrants(ctx context.Context, keyID, grantee string) ([]cloud.KeyGrant, error) {
	in := &kms.ListGrantsInput{KeyId: aws.String(keyID)}
	if grantee != "" {
		in.GranteePrincipal = aws.String(grantee)
	}
	var out []cloud.KeyGrant
	p := kms.NewListGrantsPaginator(a.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("ListGrants", err)
		}
		for _, g := range page.Grants {
			kg := cloud.KeyGrant{GranteePrincipal: aws.ToString(g.GranteePrincipal)}
			for _, op := range g.Operations {
				kg.Operations = append(kg.Operations, string(op))
			}
			out = append(out, kg)
		}
	}
	return out, nil
}

// DryRunDataKey asks KMS, with DryRun, whether the role may generate a
// data key with the key: KMS answers DryRunOperationException when the
// call would succeed ("Testing your permissions", AWS KMS Developer Guide,
// https://docs.aws.amazon.com/kms/latest/developerguide/programming-dryrun.html).
func (a *kmsAdapter) DryRunDataKey(ctx context.Context, keyID string) error {
	_, err := a.api.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{
		KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256, DryRun: aws.Bool(true),
	})
	if err == nil {
		return nil
	}
	err = apiError("GenerateDataKeyWithoutPlaintext", err)
	if cloud.CodeOf(err) == "DryRunOperationException" {
		return nil
	}
	return err
}

var (
	_ cloud.KeyConnector = (*Connector)(nil)
	_ cloud.KeyInspector = (*kmsAdapter)(nil)
)
