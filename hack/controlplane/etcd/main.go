// Command etcd is the etcd server, built from Go modules because Debian's
// etcd (3.4.23) predates the health endpoints current kube-apiservers expect.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
