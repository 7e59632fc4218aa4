package awsfake

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/amicopier/amicopier/internal/cloud"
)

// ssmProtocol serves the Parameter Store operations over the JSON 1.1
// protocol (X-Amz-Target AmazonSSM.<Operation>), from the simulator:
// requests with assumed-role credentials act as the copier role, the base
// credentials as the account's administrator.
type ssmProtocol struct{}

func (ssmProtocol) contentType() string { return "application/x-amz-json-1.1" }
func (ssmProtocol) badKeyCode() string  { return "UnrecognizedClientException" }

func (ssmProtocol) errorBody(code, message, _ string) []byte {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	return b
}

// jsonTags decodes a [{"Key", "Value"}] list.
func jsonTags(v any) map[string]string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, t := range list {
		m, _ := t.(map[string]any)
		out[stringField(m, "Key")] = stringField(m, "Value")
	}
	return out
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (ssmProtocol) handle(ctx context.Context, s *Server, r *Request) ([]byte, error) {
	client := s.cloud.ParameterClient(r.Account, r.Region)
	if r.Assumed {
		client = s.cloud.RoleParameterClient(r.Account, r.Region)
	}
	switch r.Op {
	case "GetParameters":
		names := stringList(r.JSON["Names"])
		got, err := client.GetParameters(ctx, names)
		if err != nil {
			return nil, err
		}
		params := []map[string]any{}
		invalid := []string{}
		for _, n := range names {
			p, ok := got[n]
			if !ok {
				invalid = append(invalid, n)
				continue
			}
			params = append(params, map[string]any{
				"Name": p.Name, "Type": p.Type, "Value": p.Value, "Version": p.Version, "DataType": p.DataType,
				"LastModifiedDate": float64(p.Modified.UnixMilli()) / 1000,
				"ARN":              "arn:aws:ssm:" + r.Region + ":" + r.Account + ":parameter" + arnPath(p.Name),
			})
		}
		// "The results for GetParameters requests are listed in
		// alphabetical order in query responses" (GetParameters, Names:
		// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html).
		slices.SortFunc(params, func(a, b map[string]any) int {
			return cmpString(a["Name"].(string), b["Name"].(string))
		})
		return json.Marshal(map[string]any{"Parameters": params, "InvalidParameters": invalid})
	case "ListTagsForResource", "AddTagsToResource":
		if t := stringField(r.JSON, "ResourceType"); t != "Parameter" {
			return nil, cloud.Errorf(r.Op, "InvalidResourceType", "awsfake serves the tags of parameters only, not of %q", t)
		}
		name := stringField(r.JSON, "ResourceId")
		if r.Op == "AddTagsToResource" {
			if err := client.TagParameter(ctx, name, jsonTags(r.JSON["Tags"])); err != nil {
				return nil, err
			}
			return []byte("{}"), nil
		}
		tags, err := client.ParameterTags(ctx, name)
		if err != nil {
			return nil, err
		}
		list := []map[string]string{}
		for _, k := range sortedKeys(tags) {
			list = append(list, map[string]string{"Key": k, "Value": tags[k]})
		}
		return json.Marshal(map[string]any{"TagList": list})
	case "PutParameter":
		if t := stringField(r.JSON, "Type"); t != "" && t != cloud.ParameterTypeString {
			return nil, cloud.Errorf(r.Op, "ValidationException", "awsfake serves String parameters only, not %q", t)
		}
		overwrite, _ := r.JSON["Overwrite"].(bool)
		v, err := client.PutParameter(ctx, cloud.PutParameterInput{
			Name: stringField(r.JSON, "Name"), Value: stringField(r.JSON, "Value"), Description: stringField(r.JSON, "Description"),
			DataType: stringField(r.JSON, "DataType"), Overwrite: overwrite, Tags: jsonTags(r.JSON["Tags"]),
		})
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"Version": v, "Tier": "Standard"})
	}
	return nil, cloud.Errorf(r.Op, "UnknownOperationException", "awsfake does not implement Systems Manager operation %q", r.Op)
}

func arnPath(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name
	}
	return "/" + name
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
