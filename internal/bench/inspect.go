package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/amicopier/amicopier/internal/awsapi/awsfake"
	"github.com/amicopier/amicopier/internal/cloud"
	"github.com/amicopier/amicopier/reconcile"
)

// The inspection endpoints of a served organisation (serve.go): read-only
// views for checkers in other processes, under awsfake.InspectPrefix on
// the served port. They answer JSON:
//
//	GET /_sim/scenario            ServedScenario: the organisation, its bound and floor
//	GET /_sim/calls               ServerCalls: the requests received so far
//	GET /_sim/copies[?items=...]  CopyCensus: every copy, per pair; items=all
//	                              (default), anomalies (pairs without exactly one
//	                              live copy, and copies of no wanted pair) or none

// ServedScenario is what GET /_sim/scenario answers: the scenario served
// and what a run against it must do and cost, computed by the same code
// as the in-process benchmark (bound.go).
type ServedScenario struct {
	Name        string     `json:"name"`
	Kind        Kind       `json:"kind"`
	Accounts    int        `json:"accounts"`
	Regions     []string   `json:"regions"`
	AMIs        int        `json:"amis"`
	Pairs       int        `json:"pairs"`
	Missing     int        `json:"missing"`
	Startable   int        `json:"startable"`
	DeferredCap int        `json:"deferred_in_flight_cap"`
	Bound       LowerBound `json:"lower_bound"`
	Floor       Floor      `json:"floor"`
	LatencyMS   float64    `json:"latency_ms"`
	Throttle    bool       `json:"throttle"`
}

// ServerCalls is what GET /_sim/calls answers: the requests the served
// organisation received since it started, every attempt of a retried call
// counted, and the error answers it sent.
type ServerCalls struct {
	Total       int64            `json:"total"`
	ByOperation map[string]int64 `json:"by_operation"`
	Errors      map[string]int64 `json:"errors_by_code"`
	// Throttled is the error answers whose code is a throttling one
	// (RequestLimitExceeded and the like).
	Throttled int64 `json:"throttled"`
	// CopiesMade is the images CopyImage requests created.
	CopiesMade int64 `json:"copies_made"`
	// AnswerBytes is the size of the successful answers' bodies: what
	// the client downloaded.
	AnswerBytes int64 `json:"answer_bytes"`
}

// Sub returns the calls received between the reading before and c.
func (c ServerCalls) Sub(before ServerCalls) ServerCalls {
	out := ServerCalls{Total: c.Total - before.Total, Throttled: c.Throttled - before.Throttled, CopiesMade: c.CopiesMade - before.CopiesMade,
		AnswerBytes: c.AnswerBytes - before.AnswerBytes,
		ByOperation: map[string]int64{}, Errors: map[string]int64{}}
	for op, n := range c.ByOperation {
		if d := n - before.ByOperation[op]; d != 0 {
			out.ByOperation[op] = d
		}
	}
	for code, n := range c.Errors {
		if d := n - before.Errors[code]; d != 0 {
			out.Errors[code] = d
		}
	}
	return out
}

// Mutating is the mutating calls among c.
func (c ServerCalls) Mutating() int64 {
	n := int64(0)
	for op, k := range c.ByOperation {
		if cloud.IsMutating(op) {
			n += k
		}
	}
	return n
}

// CopyCensus is what GET /_sim/copies answers: every copy of a source
// AMI in the organisation, found by the simulator's truth, per pair.
type CopyCensus struct {
	// Pairs wanted by the scenario: each source AMI and each of its
	// target accounts, in the AMI's Region.
	Pairs int `json:"pairs"`
	// Copies found, whatever their state (deregistered ones included
	// when a CopyImage request made them).
	Copies int `json:"copies"`
	// Live copies (not deregistered) per wanted pair.
	PairsWithoutCopy int `json:"pairs_without_copy"`
	PairsWithOneCopy int `json:"pairs_with_one_copy"`
	PairsWithMore    int `json:"pairs_with_more_copies"`
	// UnwantedCopies are live copies in an account or Region that is not
	// one of their source's pairs.
	UnwantedCopies int            `json:"unwanted_copies"`
	CopiesByState  map[string]int `json:"copies_by_state"`
	// MadeByCopyImage is how many copies CopyImage requests created since
	// the server started.
	MadeByCopyImage int          `json:"made_by_copy_image"`
	Items           []PairCopies `json:"items,omitempty"`
}

// PairCopies is one pair and its copies.
type PairCopies struct {
	SourceImage  string `json:"source_image"`
	SourceRegion string `json:"source_region"`
	Account      string `json:"account"`
	Region       string `json:"region"`
	// Wanted is false for copies of a source in an account and Region
	// the scenario does not target.
	Wanted bool        `json:"wanted"`
	Copies []CopyState `json:"copies"`
}

// Live is the number of copies not deregistered.
func (p PairCopies) Live() int {
	n := 0
	for _, c := range p.Copies {
		if c.State != string(cloud.ImageDeregistered) {
			n++
		}
	}
	return n
}

// CopyState is one copy.
type CopyState struct {
	ImageID string `json:"image_id"`
	State   string `json:"state"`
	// MadeBy is "CopyImage" for an image a CopyImage request to this
	// server created (ClientToken is the request's), "tag" for one found
	// by its CopiedFromAMI tag alone (the scenario's scenery, built
	// directly in the simulator).
	MadeBy      string `json:"made_by"`
	ClientToken string `json:"client_token,omitempty"`
}

// Census item selections.
const (
	ItemsAll       = "all"
	ItemsAnomalies = "anomalies"
	ItemsNone      = "none"
)

// inspector serves the inspection endpoints over a world and the fake
// that serves it.
type inspector struct {
	w    *world
	exp  Expect
	fake atomic.Pointer[awsfake.Server]
}

func (in *inspector) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	fake := in.fake.Load()
	if fake == nil {
		http.Error(rw, "the fake is not serving yet", http.StatusServiceUnavailable)
		return
	}
	var v any
	switch strings.TrimPrefix(r.URL.Path, awsfake.InspectPrefix) {
	case "scenario":
		sc := in.w.sc
		v = ServedScenario{
			Name: sc.Name, Kind: sc.Kind, Accounts: sc.Accounts, Regions: sc.Regions, AMIs: sc.AMIs(),
			Pairs: in.exp.Pairs, Missing: in.exp.Missing, Startable: in.exp.Startable, DeferredCap: in.exp.DeferredCap,
			Bound: in.exp.Bound, Floor: in.exp.Floor, LatencyMS: float64(sc.Latency) / float64(time.Millisecond), Throttle: sc.Throttle,
		}
	case "calls":
		v = serverCalls(fake)
	case "copies":
		items := r.URL.Query().Get("items")
		if items == "" {
			items = ItemsAll
		}
		if items != ItemsAll && items != ItemsAnomalies && items != ItemsNone {
			http.Error(rw, fmt.Sprintf("items=%q: want all, anomalies or none", items), http.StatusBadRequest)
			return
		}
		v = in.census(fake.Copies(), items)
	default:
		http.Error(rw, fmt.Sprintf("no inspection %q (scenario, calls, copies)", r.URL.Path), http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

func serverCalls(fake *awsfake.Server) ServerCalls {
	c := ServerCalls{ByOperation: fake.CallCounts(), Errors: fake.ErrorCounts(), CopiesMade: int64(len(fake.Copies())),
		AnswerBytes: fake.SentBytes()}
	for _, n := range c.ByOperation {
		c.Total += n
	}
	for code, n := range c.Errors {
		if cloud.ClassifyCode(code) == cloud.ClassThrottled {
			c.Throttled += n
		}
	}
	return c
}

// census finds every copy in every account and Region of the world: the
// images CopyImage requests made (from the fake's log, with their state
// now, deregistered included), and the images tagged as copies of a
// source (the scenery). It works one account and Region at a time, so a
// census of a million pairs never holds them all.
func (in *inspector) census(made []awsfake.Copy, items string) CopyCensus {
	w := in.w
	out := CopyCensus{CopiesByState: map[string]int{}, MadeByCopyImage: len(made)}
	madeIn := map[zoneKey][]awsfake.Copy{}
	for _, c := range made {
		k := zoneKey{c.Account, c.Region}
		madeIn[k] = append(madeIn[k], c)
	}
	sourceRegion := map[string]string{}
	for _, im := range w.images {
		sourceRegion[im.img.ID] = im.region
	}
	accounts := append([]string{SourceAccount}, w.accounts...)
	for _, account := range accounts {
		for _, region := range w.sc.Regions {
			// The pairs wanted here, by source id, in id order.
			var wanted []string
			if account != SourceAccount {
				for _, im := range w.images {
					if _, in := slices.BinarySearch(w.targets(im), account); in && im.region == region {
						wanted = append(wanted, im.img.ID)
					}
				}
			}
			bySource := map[string]*PairCopies{}
			pair := func(source string) *PairCopies {
				p := bySource[source]
				if p == nil {
					_, want := slices.BinarySearch(wanted, source)
					p = &PairCopies{SourceImage: source, SourceRegion: sourceRegion[source], Account: account, Region: region, Wanted: want}
					bySource[source] = p
				}
				return p
			}
			seen := map[string]bool{}
			for _, c := range madeIn[zoneKey{account, region}] {
				state := "missing" // the simulator no longer knows it: never expected
				if img, ok := w.cloud.Image(account, region, c.ImageID); ok {
					state = string(img.State)
				}
				seen[c.ImageID] = true
				p := pair(c.SourceImageID)
				p.Copies = append(p.Copies, CopyState{ImageID: c.ImageID, State: state, MadeBy: "CopyImage", ClientToken: c.ClientToken})
			}
			for _, img := range w.cloud.Images(account, region) {
				source, ok := img.Tags[reconcile.TagCopiedFrom]
				if !ok || seen[img.ID] {
					continue
				}
				p := pair(source)
				p.Copies = append(p.Copies, CopyState{ImageID: img.ID, State: string(img.State), MadeBy: "tag"})
			}
			for _, source := range wanted {
				pair(source)
			}
			for _, source := range slices.Sorted(maps.Keys(bySource)) {
				p := bySource[source]
				live := p.Live()
				out.Copies += len(p.Copies)
				for _, c := range p.Copies {
					out.CopiesByState[c.State]++
				}
				anomaly := false
				switch {
				case !p.Wanted:
					out.UnwantedCopies += live
					anomaly = live > 0
				case live == 0:
					out.PairsWithoutCopy++
					anomaly = true
				case live == 1:
					out.PairsWithOneCopy++
				default:
					out.PairsWithMore++
					anomaly = true
				}
				if p.Wanted {
					out.Pairs++
				}
				if items == ItemsAll || (items == ItemsAnomalies && anomaly) {
					out.Items = append(out.Items, *p)
				}
			}
		}
	}
	return out
}

// InspectClient reads a served organisation's inspection endpoints.
type InspectClient struct {
	base string // http://127.0.0.1:PORT
	http *http.Client
}

// NewInspectClient reads the inspection endpoints of the organisation
// served at baseURL (http://127.0.0.1:PORT).
func NewInspectClient(baseURL string) *InspectClient {
	return &InspectClient{base: strings.TrimSuffix(baseURL, "/"), http: &http.Client{Timeout: 5 * time.Minute}}
}

func (c *InspectClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+awsfake.InspectPrefix+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("inspect %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	return nil
}

// Scenario reads GET /_sim/scenario.
func (c *InspectClient) Scenario(ctx context.Context) (ServedScenario, error) {
	var s ServedScenario
	return s, c.get(ctx, "scenario", &s)
}

// Calls reads GET /_sim/calls.
func (c *InspectClient) Calls(ctx context.Context) (ServerCalls, error) {
	var s ServerCalls
	return s, c.get(ctx, "calls", &s)
}

// Copies reads GET /_sim/copies with the items selection (ItemsAll,
// ItemsAnomalies or ItemsNone).
func (c *InspectClient) Copies(ctx context.Context, items string) (CopyCensus, error) {
	var s CopyCensus
	return s, c.get(ctx, "copies?items="+items, &s)
}
