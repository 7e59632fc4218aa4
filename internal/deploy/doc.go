// Package deploy holds what the deployment of amicopier is checked with:
// a reader of the CloudFormation templates under scripts/cloudformation
// (YAML with the short-form intrinsic function tags) and the checks every
// template must pass (references resolve, resource types are known, IAM
// statements grant no wildcard and no unrestricted mutation), the table of
// IAM actions the AWS adapters call and which role must allow each, and the
// reproducible zip writer behind scripts/build-lambda.sh.
//
// Nothing here talks to AWS: the tests of this package are how the
// templates are validated without an account.
package deploy
