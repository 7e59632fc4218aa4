package reconcile

import (
	"slices"
	"testing"
)

func TestPolicyAllowsAutoScaling(t *testing.T) {
	const acct = "200000000001"
	slr := "arn:aws:iam::" + acct + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	doc := func(statements string) string { return `{"Version":"2012-10-17","Statement":` + statements + `}` }
	use := `"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"`
	grant := `"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}`
	for _, tc := range []struct {
		name, doc string
		missing   []string
		err       bool
	}{
		{"the Auto Scaling guide's statements", doc(`[{"Effect":"Allow","Principal":{"AWS":["` + slr + `"]},` + use + `},{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},` + grant + `}]`), nil, false},
		{"the member StackSet's: * pinned by conditions", doc(`[{"Effect":"Allow","Principal":{"AWS":"*"},` + use + `,"Condition":{"StringEquals":{"kms:CallerAccount":"` + acct + `"},"ArnEquals":{"aws:PrincipalArn":"` + slr + `"}}},` +
			`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:CreateGrant","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"` + acct + `"},"ArnEquals":{"aws:PrincipalArn":"` + slr + `"},"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`), nil, false},
		{"another account's role pinned", doc(`[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::999999999999:role/x"}}}]`), autoScalingKeyActions, false},
		{"the default policy: the account root only", doc(`[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"}]`), autoScalingKeyActions, false},
		{"use without CreateGrant", doc(`[{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},` + use + `}]`), []string{"kms:CreateGrant"}, false},
		{"CreateGrant condition on another key", doc(`{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"ec2.eu-west-1.amazonaws.com"}}}`), nil, false},
		{"an explicit deny wins", doc(`[{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]`), []string{"kms:Decrypt"}, false},
		{"a deny under an unknown condition does not count", doc(`[{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]`), nil, false},
		{"the organisation, by an unknown condition", doc(`[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}]`), nil, false},
		{"GrantIsForAWSResource on the use statement", doc(`[{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":"kms:*","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`),
			[]string{"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"}, false},
		{"not JSON", "{", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing, err := policyAllows(tc.doc, slr, acct, autoScalingKeyActions)
			if (err != nil) != tc.err {
				t.Fatalf("error %v", err)
			}
			if !slices.Equal(missing, tc.missing) {
				t.Fatalf("missing %v, want %v", missing, tc.missing)
			}
		})
	}
}
