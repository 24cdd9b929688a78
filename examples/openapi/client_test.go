package openapi

import (
	"bytes"
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/drlimit/drl/api"
	"github.com/drlimit/drl/cluster/clustertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A client generated from the OpenAPI document makes checks against a
// running node (forwarded to the key's owner when that is the other
// node), and reads its members, the owner of a key and the document the
// node serves.
func TestGeneratedClientAgainstANode(t *testing.T) {
	nodes := clustertest.Start(t, 2, nil)
	c, err := NewClientWithResponses("http://" + nodes[0].HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		resp, err := c.CheckWithResponse(ctx, CheckRequest{UserId: "u1", Action: "login", Limit: 2, Window: "60s"})
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("check %d: %v %v", i, resp, err)
		}
		d := resp.JSON200
		if d.Allowed != want || d.DecidedBy == nil || *d.DecidedBy != Owner || d.FallbackReason != nil {
			t.Fatalf("check %d = %+v, want allowed %v, decided by the owner", i, d, want)
		}
	}
	bad, err := c.CheckWithResponse(ctx, CheckRequest{UserId: "u1", Action: "login", Limit: 0, Window: "60s"})
	if err != nil || bad.JSON400 == nil || bad.JSON400.Error.Field == nil || *bad.JSON400.Error.Field != "limit" {
		t.Fatalf("check with limit 0: %+v %v, want a 400 naming limit", bad, err)
	}

	members, err := c.MembersWithResponse(ctx)
	if err != nil || members.JSON200 == nil || len(members.JSON200.Members) != 2 || !members.JSON200.Quorum.Majority {
		t.Fatalf("members: %+v %v", members, err)
	}
	owner, err := c.OwnerWithResponse(ctx, &OwnerParams{UserId: "u1", Action: "login"})
	if err != nil || owner.JSON200 == nil || owner.JSON200.Owner.State != MemberStateAlive {
		t.Fatalf("owner: %+v %v", owner, err)
	}
	doc, err := c.OpenapiWithResponse(ctx)
	if err != nil || doc.StatusCode() != 200 || !bytes.Equal(doc.Body, api.OpenAPI) {
		t.Fatalf("GET /openapi.yaml: %+v %v, want api/openapi.yaml", doc, err)
	}
}
