// Package helmcharts ships the operator's Helm charts inside its binary. It sits in
// helm-charts/ because go:embed cannot reach into a parent directory.
package helmcharts

import "embed"

// BitcoinNetwork holds the bitcoin-network chart under the directory "bitcoin-network".
//
//go:embed all:bitcoin-network
var BitcoinNetwork embed.FS
