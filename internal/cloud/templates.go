package cloud

// The data the configuration's templates see. They live here, beside the
// images they describe, so that the configuration can check its templates
// against them without importing the engine that executes them.

// CopyNameData is what the copy name and description templates see.
type CopyNameData struct {
	// Name, ID and Region of the source image.
	Name   string
	ID     string
	Region string
	// Account and TargetRegion the copy is made in.
	Account      string
	TargetRegion string
	// Tags of the source image.
	Tags map[string]string
}

// ParameterNameData is what the parameter name template sees: the source
// AMI's name, id, Region and tags.
type ParameterNameData struct {
	Name, ID, Region string
	Tags             map[string]string
}

// DefaultEventSource is the Source of amicopier's events.
const DefaultEventSource = "amicopier"
