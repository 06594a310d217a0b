package digest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Interval is how often a digest is due.
type Interval struct {
	Months, Days int
}

// ParseInterval reads "monthly", "weekly", "daily" or a number of days
// ("14" or "14d").
func ParseInterval(s string) (Interval, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "monthly":
		return Interval{Months: 1}, nil
	case "weekly":
		return Interval{Days: 7}, nil
	case "daily":
		return Interval{Days: 1}, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "d"))
	if err != nil || n < 1 || n > 366 {
		return Interval{}, fmt.Errorf("digest interval %q: want monthly, weekly, daily or a number of days from 1 to 366", s)
	}
	return Interval{Days: n}, nil
}

// Next returns when the digest after one made at t is due.
func (i Interval) Next(t time.Time) time.Time { return t.AddDate(0, i.Months, i.Days) }

func (i Interval) String() string {
	switch {
	case i.Months == 1 && i.Days == 0:
		return "monthly"
	case i.Months == 0 && i.Days == 7:
		return "weekly"
	case i.Months == 0 && i.Days == 1:
		return "daily"
	}
	return fmt.Sprintf("%d days", i.Days+30*i.Months)
}
