package portal

import "net/http"

// front is the front page: what this service offers, with its addresses.
func (p *Portal) front(w http.ResponseWriter, r *http.Request, v *view) {
	v.render(http.StatusOK, "front", "front.title", p.o.Links)
}
