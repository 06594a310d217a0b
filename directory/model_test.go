package directory

import (
	"slices"
	"testing"
)

// A contact receives directory data only through a role at an active
// ccTLD.
func TestReachable(t *testing.T) {
	s := &Snapshot{Members: []Member{{TLD: "pt", Status: StatusActive}, {TLD: "cn", Status: StatusInactive}}}
	for _, tc := range []struct {
		roles []Role
		want  []string
	}{
		{[]Role{{TLD: "pt", Role: RoleAdmin}}, []string{"pt"}},
		{[]Role{{TLD: "cn", Role: RoleSecurity}}, nil},
		{[]Role{{TLD: "cn", Role: RoleAdmin}, {TLD: "pt", Role: RoleSecurity}}, []string{"pt"}},
		{nil, nil},
	} {
		c := &Contact{Roles: tc.roles}
		if got := s.ActiveTLDs(c); !slices.Equal(got, tc.want) || s.Reachable(c) != (len(tc.want) > 0) {
			t.Errorf("roles %v: ActiveTLDs %v, Reachable %v; want %v", tc.roles, got, s.Reachable(c), tc.want)
		}
	}
}
