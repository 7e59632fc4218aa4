package state

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkFileCatchUp measures what a catch-up run costs the file store:
// 2,000 new pairs written with PutPair, by one writer and by 16 at once
// (the engine's default limits.concurrency), with the file opened and
// locked for each transaction. It reports the time per write and how many
// writes share one commit.
//
//	go test -run '^$' -bench FileCatchUp ./state/
func BenchmarkFileCatchUp(b *testing.B) {
	const pairs = 2000
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ctx := context.Background()
			var commits, written int64
			start := time.Now()
			for b.Loop() {
				s, err := OpenFile(filepath.Join(b.TempDir(), "state.db"))
				if err != nil {
					b.Fatal(err)
				}
				before := s.commits.Load()
				var wg sync.WaitGroup
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; i < pairs; i += writers {
							p := newPair(key(fmt.Sprintf("ami-%017d", i), "111122223333", "eu-west-1"), "999988887777", PairCopying)
							if _, err := s.PutPair(ctx, p); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				commits += s.commits.Load() - before
				written += pairs
				_ = s.Close()
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(written), "µs/write")
			b.ReportMetric(float64(written)/float64(commits), "writes/commit")
		})
	}
}

// BenchmarkFileOpenCheck measures opening a store on an existing file of
// 20,000 pairs: the whole-file check (checkTree and bbolt's tx.Check)
// that OpenFile runs once.
func BenchmarkFileOpenCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := OpenFile(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 20000; i += 16 {
				p := newPair(key(fmt.Sprintf("ami-%017d", i), "111122223333", "eu-west-1"), "999988887777", PairSettled)
				if _, err := s.PutPair(ctx, p); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	_ = s.Close()
	for b.Loop() {
		s, err := OpenFileReadOnly(path)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}
