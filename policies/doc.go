// Package policies holds Thiqa's rules as data: certificate profiles, the
// TSA policy, signature levels and who may do what. Serialisable Config types
// are turned into validated runtime types. It imports nothing of the project.
package policies
