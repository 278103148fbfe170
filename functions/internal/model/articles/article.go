// Package articles finds the published articles whose activation maps correlate best with a
// predicted brain map, as Text2Brain did next to each prediction.
//
// An article's map is built from the peak coordinates it reports (NeuroQuery corpus): a count image
// on the prediction grid, blurred with the 9 mm FWHM Gaussian of package brain, masked and divided by
// its mean over the mask. The maps are never stored: Pearson correlation only needs, per article,
// its peak voxels and two statistics of its map, because the blur is linear (see Related).
//
// This package is the run-time half, which the functions link: the Index, its binary format
// (ReadIndex, WriteTo) and the lookup (Related). The offline half, which parses the corpus files,
// is package modelbuild/corpus; it hands the articles and their peaks to New.
//
// Article metadata (authors, year, journal, DOI) comes from Neurosynth v7, which is distributed
// under the ODbL: whatever shows it must attribute Neurosynth.
package articles

import "strconv"

// Article is a training article of the model that has an activation map.
type Article struct {
	PMID    int64  `json:"pmid"`
	Title   string `json:"title"`
	Authors string `json:"authors"`
	Year    int    `json:"year"`
	Journal string `json:"journal"`
	DOI     string `json:"doi"`
}

// URL is the article's PubMed page.
func (a Article) URL() string {
	return "https://pubmed.ncbi.nlm.nih.gov/" + strconv.FormatInt(a.PMID, 10) + "/"
}

// Match is an article found by Related, with the Pearson correlation of its map with the
// prediction.
type Match struct {
	Article
	Correlation float64 `json:"correlation"`
}
