package deploy

import (
	"strings"
	"testing"
)

// header starts every test template.
const header = `AWSTemplateFormatVersion: "2010-09-09"
Description: test
`

func TestCheckFindsProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []string // substrings of expected problems; none means clean
	}{
		{
			name: "clean",
			body: `Parameters:
  Name: {Type: String, Default: a, AllowedValues: [a, b], Description: d}
Conditions:
  IsA: !Equals [!Ref Name, a]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: IsA
    Properties:
      QueueName: !Sub "${Name}-${AWS::Region}"
Outputs:
  Arn:
    Condition: IsA
    Value: !GetAtt Queue.Arn
`,
		},
		{
			name: "dangling references",
			body: `Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Ref Missing
      A: !GetAtt Nope.Arn
      B: !GetAtt Queue.Nope
      C: !Sub "${Missing2}-${!Literal}"
      D: !If [NoSuchCondition, a, b]
      E: !Sub ["${X}-${Y}", {X: x}]
      F: {"Fn::FindInMap": [NoMap, a, b]}
`,
			want: []string{`Ref "Missing"`, "no resource \"Nope\"", `has no attribute "Nope"`, `Ref "Missing2"`,
				`condition "NoSuchCondition" is not defined`, `Ref "Y"`, `mapping "NoMap"`},
		},
		{
			name: "conditions refer to parameters only",
			body: `Conditions:
  C: !Equals [!Ref Queue, x]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: C
`,
			want: []string{"a condition can only refer to parameters"},
		},
		{
			name: "unknown and malformed types",
			body: `Resources:
  A: {Type: AWS::EC2::Instance}
  B: {Type: Custom::Thing}
  C: {Type: AWS::SQS::Queue, Propertes: {}}
`,
			want: []string{`"AWS::EC2::Instance" is not in the list`, `"Custom::Thing" is not of the form`, `unknown attribute "Propertes"`},
		},
		{
			name: "unused parameters and conditions, bad defaults",
			body: `Parameters:
  Unused: {Type: String, Description: d}
  Pattern: {Type: String, Default: "x y", AllowedPattern: "^[a-z]+$", Description: d}
  Num: {Type: Number, Default: 5, MaxValue: 3, Description: d}
  NoDesc: {Type: String}
Conditions:
  Never: !Equals [!Ref Pattern, !Ref Num]
Resources:
  Q: {Type: AWS::SQS::Queue, Properties: {QueueName: !Ref NoDesc}}
`,
			want: []string{"parameter Unused is never used", "does not match its AllowedPattern",
				"over MaxValue", "NoDesc has no Description", "condition Never is never used"},
		},
		{
			name: "YAML 1.1 booleans",
			body: `Resources:
  Q: {Type: AWS::SQS::Queue, Properties: {Mode: OFF, Other: "OFF"}}
`,
			want: []string{`"OFF" unquoted`},
		},
		{
			name: "wildcard and unrestricted actions",
			body: `Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: "*", Resource: "arn:aws:s3:::b"}
              - {Effect: Allow, Action: [ec2:*], Resource: "arn:aws:ec2:*::image/*"}
              - {Effect: Allow, Action: [ec2:DeregisterImage, kms:*Grant*], Resource: "*"}
              - {Effect: Allow, NotAction: [iam:*], Resource: "*"}
              - !If [C, {Effect: Allow, Action: ec2:ModifyImageAttribute, Resource: "*", Condition: !If [C, {StringEquals: {a: b}}, !Ref "AWS::NoValue"]}, !Ref "AWS::NoValue"]
              - {Effect: Allow, Action: ec2:DescribeImages, Resource: "*"}
              - {Effect: Allow, Action: ec2:CopyImage, Resource: "*", Condition: {StringEquals: {"aws:RequestedRegion": eu-west-1}}}
Parameters:
  P: {Type: String, Description: d}
Conditions:
  C: !Equals [!Ref P, x]
`,
			want: []string{
				"trusts Service: lambda.amazonaws.com without an aws:SourceAccount",
				`Action "*" grants every action of every service`,
				`Action "ec2:*" grants every action of the service`,
				"mutating action ec2:DeregisterImage on Resource \"*\" without a Condition",
				"mutating action kms:*Grant* on Resource \"*\" without a Condition",
				"NotAction grants everything but a list",
				"mutating action ec2:ModifyImageAttribute on Resource \"*\" without a Condition",
			},
		},
		{
			name: "cross-account trust and principals",
			body: `Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {AWS: "arn:aws:iam::123456789012:root"}, Action: sts:AssumeRole}
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: "*", Action: kms:Decrypt, Resource: "*"}
          - {Effect: Allow, Principal: {AWS: "*"}, Action: kms:Encrypt, Resource: "*"}
          - {Effect: Allow, Principal: {AWS: "arn:aws:iam::123456789012:root"}, Action: kms:PutKeyPolicy, Resource: "*"}
`,
			want: []string{"without an sts:ExternalId condition", "without an aws:PrincipalArn condition",
				`Principal "*" is everyone`, `Principal "AWS: *" is everyone`,
				`mutating action kms:PutKeyPolicy on Resource "*" without a Condition`},
		},
		{
			name: "key policy principals must exist: roles by condition only",
			body: `Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - Sid: NamesRole
            Effect: Allow
            Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/x"}
            Action: kms:Decrypt
            Resource: "*"
          - Sid: PinnedStar
            Effect: Allow
            Principal: {AWS: "*"}
            Action: kms:Decrypt
            Resource: "*"
            Condition:
              ArnEquals:
                aws:PrincipalArn: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/x"
          - Sid: WildcardPin
            Effect: Allow
            Principal: {AWS: "*"}
            Action: kms:Decrypt
            Resource: "*"
            Condition:
              ArnLike:
                aws:PrincipalArn: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"
`,
			want: []string{`statement "NamesRole": names arn:${AWS::Partition}:iam::${AWS::AccountId}:role/x as a principal: KMS refuses`,
				`statement "WildcardPin": Principal "AWS: *" is everyone`},
		},
		{
			name: "policy written as a !Sub JSON document",
			body: `Parameters:
  Key: {Type: String, Description: d}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole, Condition: {StringEquals: {"aws:SourceAccount": !Ref "AWS::AccountId"}}}
  Inline:
    Type: AWS::IAM::RolePolicy
    Properties:
      RoleName: !Ref Role
      PolicyName: p
      PolicyDocument: !Sub |
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": "ec2:ModifySnapshotAttribute", "Resource": "*"},
          {"Effect": "Allow", "Action": "ec2:ModifyImageAttribute", "Resource": "*",
           "Condition": {"StringEquals": {"aws:ResourceTag/${Key}": "${Nope}"}}}
        ]}
`,
			want: []string{"mutating action ec2:ModifySnapshotAttribute", `Ref "Nope"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := ParseTemplate("test.yaml", []byte(header+tc.body))
			if err != nil {
				t.Fatal(err)
			}
			probs := Check(tpl)
			all := problemText(probs)
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("no problem mentions %q; problems:\n%s", w, all)
				}
			}
			if len(tc.want) == 0 && len(probs) > 0 {
				t.Errorf("a clean template has problems:\n%s", all)
			}
			for _, p := range probs {
				if !strings.HasPrefix(p.Pos, "test.yaml:") {
					t.Errorf("problem without a line: %s", p)
				}
			}
		})
	}
}

func TestParseTemplateShortForms(t *testing.T) {
	tpl, err := ParseTemplate("t.yaml", []byte(`A: !Ref X
B: !GetAtt R.Arn
C: !Sub ["${a}", {a: !Ref Y}]
D: !If [C, !Base64 x, !ImportValue v]
E: !Select [0, !Split [",", !Join [",", [a, b]]]]
F: !And [!Not [!Condition K], !Or [!Equals [a, b], !Equals [c, d]]]
G: !FindInMap [M, a, b]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, fn string
	}{
		{"A", "Ref"}, {"B", "Fn::GetAtt"}, {"C", "Fn::Sub"}, {"D", "Fn::If"},
		{"E", "Fn::Select"}, {"F", "Fn::And"}, {"G", "Fn::FindInMap"},
	} {
		if fn, _ := tpl.Root.Get(tc.key).Func(); fn != tc.fn {
			t.Errorf("%s parsed as %q, want %s", tc.key, fn, tc.fn)
		}
	}
	if got := RenderValue(tpl.Root.Get("B")); got != "${R.Arn}" {
		t.Errorf("!GetAtt R.Arn renders as %q", got)
	}
	nested := tpl.Root.Get("D").Fields[0].Value.Items[1]
	if fn, arg := nested.Func(); fn != "Fn::Base64" || arg.Text() != "x" {
		t.Errorf("!Base64 inside !If parsed as %s %v", fn, arg)
	}
	for _, bad := range []string{"A: !Bogus x\n", "A: !GetAtt NoDot\n", "a: &x 1\nb: *x\n", "A: 1\nA: 2\n", "- 1\n"} {
		if _, err := ParseTemplate("bad.yaml", []byte(bad)); err == nil {
			t.Errorf("ParseTemplate(%q) accepted it", bad)
		}
	}
}

func TestIsMutatingAction(t *testing.T) {
	for action, want := range map[string]bool{
		"ec2:DescribeImages":             false,
		"ec2:DescribeSnapshotAttribute":  false,
		"organizations:ListAccounts":     false,
		"organizations:DescribeAccount":  false,
		"dynamodb:GetItem":               false,
		"kms:Decrypt":                    false,
		"ec2:ModifyImageAttribute":       true,
		"ec2:CopyImage":                  true,
		"ec2:CreateTags":                 true,
		"ec2:DeleteSnapshot":             true,
		"ec2:DeregisterImage":            true,
		"dynamodb:PutItem":               true,
		"dynamodb:UpdateItem":            true,
		"kms:CreateGrant":                true,
		"kms:RetireGrant":                true,
		"kms:*Grant*":                    true,
		"ec2:Copy*":                      true,
		"ec2:C*":                         true,
		"ec2:*":                          true,
		"ec2:Describe*":                  false,
		"kms:ReEncrypt*":                 false,
		"kms:GenerateDataKey*":           false,
		"sts:AssumeRole":                 true,
		"iam:PassRole":                   true,
		"lambda:InvokeFunction":          true,
		"states:StartExecution":          true,
		"*":                              true,
		"kms:GenerateDataKeyWithoutPlai": false,
	} {
		if got := IsMutatingAction(action); got != want {
			t.Errorf("IsMutatingAction(%q) = %v, want %v", action, got, want)
		}
	}
}

func TestActionMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, action string
		want            bool
	}{
		{"kms:ReEncrypt*", "kms:ReEncryptFrom", true},
		{"kms:ReEncrypt*", "kms:reencryptto", true},
		{"kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", true},
		{"ec2:DescribeImages", "ec2:DescribeImageAttribute", false},
		{"ec2:Describe?mages", "ec2:DescribeImages", true},
		{"ec2:*", "ec2:CopyImage", true},
		{"ec2:*", "kms:Decrypt", false},
		{"*", "anything:Goes", true},
	} {
		if got := ActionMatches(tc.pattern, tc.action); got != tc.want {
			t.Errorf("ActionMatches(%q, %q) = %v, want %v", tc.pattern, tc.action, got, tc.want)
		}
	}
}

func TestSubstitutePlaceholders(t *testing.T) {
	got := SubstitutePlaceholders(`{"a": "arn:${AWS::Partition}:x/${Key}", "b": "${!Literal}"}`)
	if want := `{"a": "arn:AWS-Partition:x/Key", "b": "${Literal}"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestMaxLength(t *testing.T) {
	tpl, err := ParseTemplate("t.yaml", []byte(header+`Parameters:
  Max: {Type: String, MaxLength: 10, Description: d}
  Pattern: {Type: String, AllowedPattern: "^[a-z]{1,7}(-x|-long)?$", Description: d}
  Both: {Type: String, MaxLength: 5, AllowedPattern: "^[a-z]{1,9}$", Description: d}
  Values: {Type: String, AllowedValues: [a, abcd], Description: d}
  Free: {Type: String, AllowedPattern: "^[a-z]+$", Description: d}
Resources:
  Q: {Type: AWS::SQS::Queue}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		yaml string
		want int // -1: unbounded
	}{
		{`literal`, 7},
		{`!Ref Max`, 10},
		{`!Ref Pattern`, 12},
		{`!Ref Both`, 5},
		{`!Ref Values`, 4},
		{`!Ref Free`, -1},
		{`!Ref Q`, -1},
		{`!Sub "${Max}-nightly"`, 18},
		{`!Sub "${Max}-${AWS::AccountId}-${!Lit}"`, 10 + 1 + 12 + 1 + 6},
		{`!Sub ["${X}-${Values}", {X: !Ref Max}]`, 15},
		{`!Sub "${Q.Arn}"`, -1},
		{`!If [C, !Ref Max, !Sub "${Values}${Values}"]`, 10},
		{`!Join ["", [a, b]]`, -1},
	} {
		v, err := ParseTemplate("v.yaml", []byte("v: "+tc.yaml+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		n, err := tpl.MaxLength(v.Root.Get("v"))
		switch {
		case tc.want < 0 && err == nil:
			t.Errorf("MaxLength(%s) = %d, want an error (unbounded)", tc.yaml, n)
		case tc.want >= 0 && (err != nil || n != tc.want):
			t.Errorf("MaxLength(%s) = %d, %v; want %d", tc.yaml, n, err, tc.want)
		}
	}
}

func TestCheckNamesFindsLongNames(t *testing.T) {
	tpl, err := ParseTemplate("t.yaml", []byte(header+`Parameters:
  FunctionName: {Type: String, AllowedPattern: "^[a-zA-Z0-9_-]{1,64}$", Description: d}
  Free: {Type: String, Description: d}
Resources:
  Schedule:
    Type: AWS::Scheduler::Schedule
    Properties:
      Name: !Sub "${FunctionName}-nightly"
  Fits:
    Type: AWS::Scheduler::Schedule
    Properties:
      Name: !Ref FunctionName
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Ref Free
      Policies:
        - PolicyName: !Sub "${FunctionName}${FunctionName}-policy"
`))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckNames(tpl)
	all := problemText(got)
	for _, want := range []string{
		"resource Schedule: Name ${FunctionName}-nightly can be 72 characters long; AWS allows 64",
		"resource Role: RoleName ${Free}: parameter Free: no MaxLength",
		"resource Role: Policies[].PolicyName ${FunctionName}${FunctionName}-policy can be 135 characters long; AWS allows 128",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("CheckNames does not report %q; it reports:\n%s", want, all)
		}
	}
	if len(got) != 3 || strings.Contains(all, "resource Fits") {
		t.Errorf("CheckNames reports %d problems, want 3:\n%s", len(got), all)
	}
}

// problemText is the problems, one a line.
func problemText(probs []Problem) string {
	var lines []string
	for _, p := range probs {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}
