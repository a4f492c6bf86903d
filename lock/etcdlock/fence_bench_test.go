package etcdlock

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// BenchmarkFenceCost measures what the fence costs a free-lock join:
// a join and a release with the fenced transaction (joinTxn), and the
// same without the fence (the unnested transaction used before),
// alternated in every iteration against the embedded server of the
// tests (its endpoint comes from TestMain), so that both see the same
// load. It reports the mean of each and their ratio.
func BenchmarkFenceCost(b *testing.B) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{os.Getenv("AGENTLOCK_ETCD_TEST_ENDPOINT")}, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	g, err := cli.Grant(ctx, 60)
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Revoke(ctx, g.ID)
	state := fmt.Sprintf("agentlock-bench/%d", time.Now().UnixNano())
	queue := state + "/"
	var spent [2]time.Duration // unfenced, fenced
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 2; j++ {
			fenced := (i+j)%2 == 1 // alternate which goes first
			key := fmt.Sprintf("%s%016x-%x", queue, int64(g.ID), n)
			n++
			start := time.Now()
			var resp *clientv3.TxnResponse
			if fenced {
				unfenced, join := joinTxn(queue, state, key, g.ID, "{}", true)
				resp, err = cli.Txn(ctx).If(unfenced...).Then(join).Commit()
			} else {
				free := clientv3.Compare(clientv3.CreateRevision(queue), "=", 0).WithPrefix()
				put := clientv3.OpPut(key, "{}", clientv3.WithLease(g.ID))
				resp, err = cli.Txn(ctx).If(free).Then(put, clientv3.OpGet(state), clientv3.OpPut(state, stateHeld+key)).
					Else(clientv3.OpGet(queue, clientv3.WithLastCreate()...), put).Commit()
			}
			if err != nil || !resp.Succeeded {
				b.Fatal(err)
			}
			_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(state), "=", stateHeld+key)).
				Then(clientv3.OpDelete(key), clientv3.OpPut(state, stateReleased+key)).Else(clientv3.OpDelete(key)).Commit()
			if err != nil {
				b.Fatal(err)
			}
			if fenced {
				spent[1] += time.Since(start)
			} else {
				spent[0] += time.Since(start)
			}
		}
	}
	b.ReportMetric(float64(spent[0].Microseconds())/float64(b.N), "unfenced-µs")
	b.ReportMetric(float64(spent[1].Microseconds())/float64(b.N), "fenced-µs")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "ratio")
}
