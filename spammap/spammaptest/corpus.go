// Package spammaptest generates synthetic but realistically shaped spam
// sources for the map's tests, benchmarks and screenshots: a skewed (Zipf)
// spread over real cities of the countries that send most spam, a few
// hundred networks per city, some country-only and IPv6 answers. It streams
// events like the store does, so benchmarks measure the aggregation's own
// memory, not a slice of events.
package spammaptest

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/mxgrid/mxgrid/spammap"
)

// City is a source location as a GeoIP City database reports it.
type City struct {
	Country, CountryName, City string
	Lat, Lon                   float64
	ASOrg                      string
}

// Cities, busiest first: the corpus weighs them by rank.
var Cities = []City{
	{"US", "United States", "Ashburn", 39.04, -77.49, "Amazon.com, Inc."},
	{"CN", "China", "Beijing", 39.91, 116.40, "China Unicom Backbone"},
	{"BR", "Brazil", "São Paulo", -23.55, -46.63, "Telefonica Brasil S.A."},
	{"IN", "India", "Mumbai", 19.08, 72.88, "Reliance Jio Infocomm"},
	{"VN", "Vietnam", "Hanoi", 21.03, 105.85, "Viettel Group"},
	{"RU", "Russia", "Moscow", 55.76, 37.62, "Rostelecom"},
	{"US", "United States", "Dallas", 32.78, -96.80, "DigitalOcean, LLC"},
	{"DE", "Germany", "Frankfurt am Main", 50.11, 8.68, "Hetzner Online GmbH"},
	{"CN", "China", "Guangzhou", 23.13, 113.26, "China Telecom"},
	{"ID", "Indonesia", "Jakarta", -6.21, 106.85, "Telkom Indonesia"},
	{"NL", "Netherlands", "Amsterdam", 52.37, 4.90, "LeaseWeb Netherlands B.V."},
	{"US", "United States", "Los Angeles", 34.05, -118.24, "QuadraNet Enterprises"},
	{"TR", "Turkey", "Istanbul", 41.01, 28.98, "Turk Telekom"},
	{"FR", "France", "Roubaix", 50.69, 3.18, "OVH SAS"},
	{"CN", "China", "Shanghai", 31.23, 121.47, "China Telecom"},
	{"VN", "Vietnam", "Ho Chi Minh City", 10.82, 106.63, "VNPT Corp"},
	{"IN", "India", "New Delhi", 28.61, 77.21, "Bharti Airtel"},
	{"BR", "Brazil", "Rio de Janeiro", -22.91, -43.17, "Claro S.A."},
	{"US", "United States", "New York", 40.71, -74.01, "Cogent Communications"},
	{"AR", "Argentina", "Buenos Aires", -34.60, -58.38, "Telecom Argentina S.A."},
	{"GB", "United Kingdom", "London", 51.51, -0.13, "M247 Europe SRL"},
	{"UA", "Ukraine", "Kyiv", 50.45, 30.52, "Kyivstar"},
	{"TH", "Thailand", "Bangkok", 13.76, 100.50, "True Internet"},
	{"PK", "Pakistan", "Karachi", 24.86, 67.01, "PTCL"},
	{"MX", "Mexico", "Mexico City", 19.43, -99.13, "Telmex"},
	{"KR", "South Korea", "Seoul", 37.57, 126.98, "Korea Telecom"},
	{"NG", "Nigeria", "Lagos", 6.52, 3.38, "MTN Nigeria"},
	{"IR", "Iran", "Tehran", 35.69, 51.39, "Iran Telecommunication Co"},
	{"BD", "Bangladesh", "Dhaka", 23.81, 90.41, "Grameenphone"},
	{"PH", "Philippines", "Manila", 14.60, 120.98, "PLDT"},
	{"CO", "Colombia", "Bogotá", 4.71, -74.07, "Colombia Telecomunicaciones"},
	{"EG", "Egypt", "Cairo", 30.04, 31.24, "TE Data"},
	{"PL", "Poland", "Warsaw", 52.23, 21.01, "Orange Polska"},
	{"RU", "Russia", "Saint Petersburg", 59.93, 30.36, "PJSC MegaFon"},
	{"IT", "Italy", "Milan", 45.46, 9.19, "Aruba S.p.A."},
	{"SG", "Singapore", "Singapore", 1.35, 103.82, "Alibaba (US) Technology"},
	{"HK", "Hong Kong", "Hong Kong", 22.32, 114.17, "HKT Limited"},
	{"ES", "Spain", "Madrid", 40.42, -3.70, "Telefonica de Espana"},
	{"ZA", "South Africa", "Johannesburg", -26.20, 28.05, "Vodacom"},
	{"KZ", "Kazakhstan", "Almaty", 43.24, 76.89, "Kazakhtelecom"},
	{"RO", "Romania", "Bucharest", 44.43, 26.10, "RCS & RDS"},
	{"US", "United States", "Chicago", 41.88, -87.63, "Comcast Cable"},
	{"CA", "Canada", "Toronto", 43.65, -79.38, "Rogers Communications"},
	{"JP", "Japan", "Tokyo", 35.68, 139.69, "NTT Communications"},
	{"MY", "Malaysia", "Kuala Lumpur", 3.14, 101.69, "TM Net"},
	{"CL", "Chile", "Santiago", -33.45, -70.67, "Entel Chile"},
	{"PE", "Peru", "Lima", -12.05, -77.04, "Telefonica del Peru"},
	{"MA", "Morocco", "Casablanca", 33.57, -7.59, "Maroc Telecom"},
	{"TW", "Taiwan", "Taipei", 25.03, 121.57, "Chunghwa Telecom"},
	{"SA", "Saudi Arabia", "Riyadh", 24.71, 46.68, "Saudi Telecom Company"},
	{"BG", "Bulgaria", "Sofia", 42.70, 23.32, "Vivacom"},
	{"KE", "Kenya", "Nairobi", -1.29, 36.82, "Safaricom"},
	{"VE", "Venezuela", "Caracas", 10.48, -66.90, "CANTV"},
	{"DZ", "Algeria", "Algiers", 36.75, 3.06, "Algerie Telecom"},
	{"AU", "Australia", "Sydney", -33.87, 151.21, "Telstra"},
	{"US", "United States", "Seattle", 47.61, -122.33, "Microsoft Corporation"},
	{"CN", "China", "Chengdu", 30.57, 104.07, "China Mobile"},
	{"BR", "Brazil", "Fortaleza", -3.73, -38.52, "Brisanet"},
	{"IN", "India", "Bengaluru", 12.97, 77.59, "Tata Communications"},
	{"RU", "Russia", "Novosibirsk", 55.01, 82.93, "Novotelecom"},
}

// Corpus streams N events ending at End, spread evenly over Span, newest
// first. The same Seed gives the same events.
type Corpus struct {
	N    int
	Seed uint64
	End  time.Time
	Span time.Duration
}

// RecentEvents implements spammap.EventSource.
func (c Corpus) RecentEvents(ctx context.Context, limit int, since time.Time, fn func(spammap.Event) error) error {
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	// Zipf-like weights by rank, sampled through the cumulative sum.
	cum := make([]float64, len(Cities))
	total := 0.0
	for i := range Cities {
		total += 1 / math.Pow(float64(i+1), 0.9)
		cum[i] = total
	}
	n := min(c.N, limit)
	step := c.Span / time.Duration(max(c.N, 1))
	for i := range n {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		t := c.End.Add(-time.Duration(i) * step)
		if !since.IsZero() && t.Before(since) {
			return nil
		}
		r := rng.Float64() * total
		ci := 0
		for cum[ci] < r {
			ci++
		}
		city := Cities[ci]
		// Each city's spam comes from up to 20,000 networks (/24s), most
		// of it from a few hundred of them.
		u := rng.Float64()
		netIdx := int(u * u * u * 20000)
		e := spammap.Event{
			Time:        t,
			Located:     true,
			Country:     city.Country,
			CountryName: city.CountryName,
			City:        city.City,
			// GeoIP places most addresses on the city, some on suburbs.
			Lat:   city.Lat + suburb(rng),
			Lon:   city.Lon + suburb(rng),
			ASN:   uint32(64512 + ci),
			ASOrg: city.ASOrg,
		}
		switch x := rng.IntN(100); {
		case x < 6: // a country-level answer: no position
			e.Located, e.City, e.Lat, e.Lon = false, "", 0, 0
		case x < 8:
			e.IP = netip.AddrFrom16([16]byte{0x2a, 0x02, 0x0e, 0xc0, byte(ci), byte(netIdx >> 8), byte(netIdx), 0, 0, 0, 0, 0, 0, 0, byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		if !e.IP.IsValid() {
			e.IP = netip.AddrFrom4([4]byte{byte(11 + ci*3), byte(netIdx >> 8), byte(netIdx), byte(1 + rng.IntN(254))})
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func suburb(rng *rand.Rand) float64 {
	if rng.IntN(10) < 8 {
		return 0
	}
	return (rng.Float64() - 0.5) * 0.8
}
