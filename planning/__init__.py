"""Planning a sale, with no AWS and no Pulumi in it: the capacity arithmetic and the sale calendar's schedule."""
