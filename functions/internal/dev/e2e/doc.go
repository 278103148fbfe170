// Package e2e holds the end-to-end tests of the serverless path: the whole local stack (Google's
// Firestore and Pub/Sub emulators, fake Cloud Storage, both functions served by the functions
// framework, push delivery) driven through the public API.
package e2e
