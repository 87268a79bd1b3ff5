import h5py, numpy as np
f=h5py.File('results/gemma_long.h5','r')
n=int(f.attrs['n_tokens']); P=int(f.attrs['n_prefill']); sc=f.attrs['attn_scale']
tok=f['tokens'][:]
same=(tok[47:]==tok[:-47])
# first position from which >= 90% of every following 47-window matches
for s in range(P, n-47):
    if same[s-47:].mean()>0.95: print('loop from position',s,'(decode step index',s-P,')', 'match rest %.3f'%same[s-47:].mean()); break
for L in (5,11,17):
    g=f['layer_%03d'%L]; q=g['q'][:].astype(np.float32); k=g['k'][:,0,:].astype(np.float32)
    sink=[];lags=[]
    for t in range(P,n):
        lg=sc*(q[t]@k[:t+1].T)
        p=np.exp(lg-lg.max(1,keepdims=True)); p/=p.sum(1,keepdims=True)
        sink.append(p[:,0].mean())
        pp=p.mean(0).copy(); pp[0]=0
        lags.append(t-int(np.argmax(pp)))
    lags=np.array(lags)
    vals,cnt=np.unique(lags,return_counts=True); o=np.argsort(-cnt)[:4]
    print('layer',L,'sink mass mean %.3f'%np.mean(sink),'argmax lag (no sink):',[(int(v),'%.0f%%'%(100*c/len(lags))) for v,c in zip(vals[o],cnt[o])])
