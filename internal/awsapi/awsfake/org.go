package awsfake

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/internal/sim"
)

type orgProtocol struct{}

func (orgProtocol) contentType() string { return "application/x-amz-json-1.1" }
func (orgProtocol) badKeyCode() string  { return "UnrecognizedClientException" }

func (orgProtocol) errorBody(code, message, _ string) []byte {
	b, _ := json.Marshal(map[string]string{"__type": code, "Message": message})
	return b
}

type jsonAccount struct {
	ID              string  `json:"Id"`
	Arn             string  `json:"Arn"`
	Email           string  `json:"Email"`
	Name            string  `json:"Name"`
	State           string  `json:"State"`
	Status          string  `json:"Status,omitempty"`
	JoinedMethod    string  `json:"JoinedMethod"`
	JoinedTimestamp float64 `json:"JoinedTimestamp"`
}

func (s *Server) jsonAccount(a cloud.Account) jsonAccount {
	status := ""
	switch a.State {
	case cloud.AccountActive, cloud.AccountSuspended, cloud.AccountPendingClosure:
		status = string(a.State)
	}
	return jsonAccount{
		ID: a.ID, Arn: fmt.Sprintf("arn:aws:organizations::%s:account/%s/%s", sim.ManagementAccount, sim.OrganizationID, a.ID),
		Email: a.ID + "@example.com", Name: a.Name, State: string(a.State), Status: status,
		JoinedMethod: "CREATED", JoinedTimestamp: 1767225600,
	}
}

func stringField(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

// handle serves the Organizations listings from the simulator,
// paginated with OrgPageSize items (or the request's MaxResults).
func (orgProtocol) handle(ctx context.Context, s *Server, r *Request) ([]byte, error) {
	// One attempt: the caller's SDK retries over HTTP, so each request
	// is one simulated call, counted and throttled where AWS would.
	conn, err := s.cloud.Connector(s.opt.BaseAccount, sim.WithAttempts(1)).Organization(ctx)
	if err != nil {
		return nil, err
	}
	org, ok := conn.(*sim.Organization)
	if !ok {
		return nil, fmt.Errorf("awsfake: the simulator's Organizations client is a %T", conn)
	}
	size := s.opt.OrgPageSize
	if v, ok := r.JSON["MaxResults"].(float64); ok && v >= 1 {
		size = min(size, int(v))
	}
	token := stringField(r.JSON, "NextToken")
	out := map[string]any{}
	var next string
	switch r.Op {
	case "ListAccounts":
		accts, err := org.ListAccounts(ctx)
		if err != nil {
			return nil, err
		}
		var page []cloud.Account
		if page, next, err = paginate(accts, token, size); err != nil {
			return nil, cloud.Errorf(r.Op, "InvalidInputException", "%v", err)
		}
		items := make([]jsonAccount, len(page))
		for i, a := range page {
			items[i] = s.jsonAccount(a)
		}
		out["Accounts"] = items
	case "DescribeOrganization":
		info, err := org.DescribeOrganization(ctx)
		if err != nil {
			return nil, err
		}
		// The answer's shape (DescribeOrganization:
		// https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeOrganization.html);
		// MasterAccountId is the management account.
		out["Organization"] = map[string]any{
			"Id": info.ID, "Arn": info.ARN, "FeatureSet": "ALL",
			"MasterAccountId": info.ManagementAccount, "MasterAccountEmail": info.ManagementAccount + "@example.com",
			"MasterAccountArn": "arn:aws:organizations::" + info.ManagementAccount + ":account/" + info.ID + "/" + info.ManagementAccount,
		}
	case "DescribeAccount":
		// DescribeAccount
		// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_DescribeAccount.html): AccountId is
		// required; the simulator answers AccountNotFoundException for
		// an account outside the organisation, never an empty Account.
		id, ok := r.JSON["AccountId"].(string)
		if !ok || id == "" {
			return nil, cloud.Errorf(r.Op, "InvalidInputException", "AccountId is required")
		}
		a, err := org.DescribeAccount(ctx, id)
		if err != nil {
			return nil, err
		}
		out["Account"] = s.jsonAccount(a)
	case "ListRoots":
		roots, err := org.ListRoots(ctx)
		if err != nil {
			return nil, err
		}
		items := make([]map[string]any, len(roots))
		for i, id := range roots {
			items[i] = map[string]any{"Id": id, "Name": "Root", "Arn": "arn:aws:organizations::" + sim.ManagementAccount + ":root/" + sim.OrganizationID + "/" + id, "PolicyTypes": []any{}}
		}
		out["Roots"] = items
	case "ListOrganizationalUnitsForParent", "ListAccountsForParent":
		parent := stringField(r.JSON, "ParentId")
		if parent == "" {
			return nil, cloud.Errorf(r.Op, "InvalidInputException", "ParentId is required")
		}
		// Each API lists on its own: one request, one simulated listing.
		if r.Op == "ListOrganizationalUnitsForParent" {
			ous, err := org.ListOUsForParent(ctx, parent)
			if err != nil {
				return nil, err
			}
			var page []cloud.OU
			if page, next, err = paginate(ous, token, size); err != nil {
				return nil, cloud.Errorf(r.Op, "InvalidInputException", "%v", err)
			}
			items := make([]map[string]any, len(page))
			for i, ou := range page {
				items[i] = map[string]any{"Id": ou.ID, "Name": ou.Name, "Arn": sim.OUARN(ou.ID)}
			}
			out["OrganizationalUnits"] = items
			break
		}
		accounts, err := org.ListAccountsForParent(ctx, parent)
		if err != nil {
			return nil, err
		}
		var page []string
		if page, next, err = paginate(accounts, token, size); err != nil {
			return nil, cloud.Errorf(r.Op, "InvalidInputException", "%v", err)
		}
		items := make([]jsonAccount, 0, len(page))
		for _, id := range page {
			a, _ := s.cloud.Account(id)
			items = append(items, s.jsonAccount(a))
		}
		out["Accounts"] = items
	default:
		return nil, cloud.Errorf(r.Op, "UnknownOperationException", "awsfake does not implement Organizations operation %q", r.Op)
	}
	if next != "" {
		out["NextToken"] = next
	}
	return json.Marshal(out)
}
