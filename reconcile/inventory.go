package reconcile

import (
	"slices"
	"strings"

	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile/report"
)

// copyInventory describes the copies found for a pair for the report: the
// inventory of which copy serves a source in an account and Region.
func copyInventory(copies []cloud.Image) []report.Copy {
	if len(copies) == 0 {
		return nil
	}
	out := make([]report.Copy, len(copies))
	for i := range copies {
		out[i] = describeCopy(&copies[i])
	}
	return out
}

func describeCopy(img *cloud.Image) report.Copy {
	c := report.Copy{ImageID: img.ID, State: string(img.State), Encrypted: len(img.BlockDevices) > 0, Managed: Managed(img),
		DeprecationTime: img.DeprecationTime}
	var keys []string
	for _, bd := range img.BlockDevices {
		c.Encrypted = c.Encrypted && bd.Encrypted
		if bd.KMSKeyID != "" && !slices.Contains(keys, bd.KMSKeyID) {
			keys = append(keys, bd.KMSKeyID)
		}
	}
	switch {
	case c.Managed && img.Tags[TagKMSKey] != "":
		// The key amicopier asked for; its snapshots, when read, say the
		// same key as an ARN.
		c.KMSKey, c.KMSKeyFrom = img.Tags[TagKMSKey], report.KeyRequested
	case len(keys) > 0:
		c.KMSKey, c.KMSKeyFrom = strings.Join(keys, ","), report.KeySnapshots
	case c.Managed && c.Encrypted:
		c.KMSKeyFrom = report.KeyAccountDefault
	}
	return c
}

// startedCopy describes a copy a run just started with CopyImage, asking
// for key (empty: the account's default EBS key).
func startedCopy(imageID, key string) report.Copy {
	c := report.Copy{ImageID: imageID, State: string(cloud.ImagePending), Encrypted: true, Managed: true,
		KMSKey: key, KMSKeyFrom: report.KeyRequested}
	if key == "" {
		c.KMSKeyFrom = report.KeyAccountDefault
	}
	return c
}
