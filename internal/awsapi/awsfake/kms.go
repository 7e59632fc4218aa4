package awsfake

import (
	"context"
	"encoding/json"

	"github.com/amicopier/amicopier/internal/cloud"
)

// kmsProtocol serves the KMS operations of the preflight check over the
// JSON 1.1 protocol (X-Amz-Target TrentService.<Operation>), from the
// simulator: requests with assumed-role credentials act as the copier
// role, the base credentials as the account's administrator.
type kmsProtocol struct{}

func (kmsProtocol) contentType() string { return "application/x-amz-json-1.1" }
func (kmsProtocol) badKeyCode() string  { return "UnrecognizedClientException" }

func (kmsProtocol) errorBody(code, message, _ string) []byte {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	return b
}

func (kmsProtocol) handle(ctx context.Context, s *Server, r *Request) ([]byte, error) {
	client := s.cloud.KeyClient(r.Account, r.Region)
	if r.Assumed {
		client = s.cloud.RoleKeyClient(r.Account, r.Region)
	}
	keyID := stringField(r.JSON, "KeyId")
	switch r.Op {
	case "DescribeKey":
		info, err := client.DescribeKey(ctx, keyID)
		if err != nil {
			return nil, err
		}
		meta := map[string]any{
			"KeyId": info.ID, "Arn": info.ARN, "AWSAccountId": info.Account, "KeyState": string(info.State),
			"Enabled": info.State == cloud.KeyEnabled, "KeySpec": info.Spec, "CustomerMasterKeySpec": info.Spec,
			"KeyUsage": info.Usage, "KeyManager": info.Manager, "Origin": "AWS_KMS", "CreationDate": 1767225600,
			"Description": "", "MultiRegion": false,
		}
		if !info.DeletionDate.IsZero() {
			meta["DeletionDate"] = float64(info.DeletionDate.Unix())
		}
		return json.Marshal(map[string]any{"KeyMetadata": meta})
	case "GetKeyPolicy":
		if name := stringField(r.JSON, "PolicyName"); name != "" && name != "default" {
			return nil, cloud.Errorf(r.Op, "NotFoundException", "No such policy exists: %s", name)
		}
		doc, err := client.KeyPolicy(ctx, keyID)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"Policy": doc, "PolicyName": "default"})
	case "ListGrants":
		grants, err := client.KeyGrants(ctx, keyID, stringField(r.JSON, "GranteePrincipal"))
		if err != nil {
			return nil, err
		}
		items := make([]map[string]any, len(grants))
		for i, g := range grants {
			items[i] = map[string]any{"KeyId": keyID, "GranteePrincipal": g.GranteePrincipal, "Operations": g.Operations, "GrantId": "grant-" + string(rune('a'+i))}
		}
		return json.Marshal(map[string]any{"Grants": items, "Truncated": false})
	case "GenerateDataKeyWithoutPlaintext":
		if dry, _ := r.JSON["DryRun"].(bool); !dry {
			return nil, cloud.Errorf(r.Op, "ValidationException", "awsfake serves GenerateDataKeyWithoutPlaintext with DryRun only")
		}
		if err := client.DryRunDataKey(ctx, keyID); err != nil {
			return nil, err
		}
		return nil, cloud.Errorf(r.Op, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	}
	return nil, cloud.Errorf(r.Op, "UnknownOperationException", "awsfake does not implement KMS operation %q", r.Op)
}
