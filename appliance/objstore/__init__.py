"""Object storage the fleet shares: S3-compatible stores and plain directories (an NFS
mount), behind one small interface (:mod:`appliance.objstore.store`). Policy bundles are
fetched from it and sealed audit segments are archived in it."""
