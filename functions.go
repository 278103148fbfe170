// Package text2brain is the root of the deployed source. Cloud Functions' Go buildpack imports the
// package at the root of the uploaded source for its init() registrations; importing the two entry
// packages registers both functions, Query (HTTP) and Predict (CloudEvent), and the deployment's
// entry point (FUNCTION_TARGET) picks one.
package text2brain

import (
	_ "github.com/text2brain/text2brain/functions/predict"
	_ "github.com/text2brain/text2brain/functions/query"
)
